"""Every OpenStack API path, under one origin: /identity, /compute, /image, /network, /volume;
and EC2's Query API at /ec2."""

from django.urls import include, path, re_path

from . import (
    identity,
    identity_admin,
    identity_catalog,
    identity_credentials,
    identity_groups,
    metadata,
    openapi,
    scrape,
)
from .ec2.views import ec2_endpoint

identity_patterns = [
    path("", identity.IdentityRoot.as_view()),
    path("/", identity.IdentityRoot.as_view()),
    path("/v3", identity.IdentityV3.as_view()),
    path("/v3/", identity.IdentityV3.as_view()),
    path("/v3/auth/tokens", identity.AuthTokens.as_view()),
    *identity_admin.urlpatterns,
    path("/v3/auth/catalog", identity.AuthCatalog.as_view()),
    *identity_catalog.urlpatterns,
    *identity_groups.urlpatterns,
    *identity_credentials.urlpatterns,
]

urlpatterns = [
    path("openapi.json", openapi.openapi_json),
    # Prometheus scrapes here (cloud/api/scrape.py; docs/observability.md).
    path("metrics", scrape.metrics_view),
    path("identity", include(identity_patterns)),
    path("compute", include("cloud.api.compute.urls")),
    path("image", include("cloud.api.image.urls")),
    path("network", include("cloud.api.network.urls")),
    path("volume", include("cloud.api.volume.urls")),
    # EC2's Query API (cloud/api/ec2): one endpoint, the action in the parameters.
    path("ec2", ec2_endpoint),
    path("ec2/", ec2_endpoint),
    # The metadata service, for the hosts' proxies (cloud/api/metadata.py).
    re_path(r"^metadata(?P<path>/.*)?$", metadata.metadata_view),
]
