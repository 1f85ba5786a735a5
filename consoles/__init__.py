"""Browser consoles: the noVNC page, the Channels consumer that relays its websocket to a guest's VNC
port in the web process, and the standalone websockify proxy (`python -m consoles.proxy`).

Tokens, and every rule about them, live in cloud/compute/consoles.py; this package only speaks
HTTP, websockets and TCP.
"""
