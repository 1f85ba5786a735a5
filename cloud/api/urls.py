"""Every OpenStack API path, under one origin: /identity, /compute, /image, /network."""

from django.urls import include, path

from . import identity, identity_admin, openapi

identity_patterns = [
    path("", identity.IdentityRoot.as_view()),
    path("/", identity.IdentityRoot.as_view()),
    path("/v3", identity.IdentityV3.as_view()),
    path("/v3/", identity.IdentityV3.as_view()),
    path("/v3/auth/tokens", identity.AuthTokens.as_view()),
    *identity_admin.urlpatterns,
]

urlpatterns = [
    path("openapi.json", openapi.openapi_json),
    path("identity", include(identity_patterns)),
    path("compute", include("cloud.api.compute.urls")),
    path("image", include("cloud.api.image.urls")),
    path("network", include("cloud.api.network.urls")),
]
