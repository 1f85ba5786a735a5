from rest_framework.parsers import JSONParser


class LenientJSONParser(JSONParser):
    """Reads any request body as JSON. Clients differ in the content type they send (Glance's
    json-patch type, none at all); views that stream raw bytes never touch request.data."""

    media_type = "*/*"
