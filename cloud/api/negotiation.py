from rest_framework.negotiation import BaseContentNegotiation


class AlwaysJSON(BaseContentNegotiation):
    """OpenStack APIs answer JSON whatever the client's Accept header says (the SDK sends
    `Accept: application/octet-stream` on image uploads, and DRF would answer 406)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
