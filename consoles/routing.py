"""Websocket routes of the web process (cloud/asgi.py). The page connects to /console/ws; the console
URL itself (/console/?token=…) also upgrades, for clients that open the URL they were given as a
websocket (Tempest's noVNC test, websockify-style tools)."""

from django.urls import path

from .consumer import ConsoleRelay

console_relay = ConsoleRelay()

websocket_urlpatterns = [
    path("console/ws", console_relay),
    path("console/", console_relay),
]
