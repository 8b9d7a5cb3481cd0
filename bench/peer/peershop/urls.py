"""oscarapi under /api/ (as its docs mount it) and a health check that touches nothing."""

from django.http import HttpResponse
from django.urls import include, path


def health(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("api/", include("oscarapi.urls")),
]
