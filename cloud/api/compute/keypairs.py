"""Placeholder: routes are added by the feature's implementation (paths relative to /v2.1)."""

urlpatterns: list = []
