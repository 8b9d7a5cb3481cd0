"""oscarapi under /api/ (as its docs mount it), a health check that touches nothing, and the
bench's search / filtered list / facets on Oscar's models (peershop/views.py)."""

from django.http import HttpResponse
from django.urls import include, path

from peershop.views import BenchProductList


def health(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("api/", include("oscarapi.urls")),
    # One view: /bench/search/?q= is the list with a search text only.
    path("bench/search/", BenchProductList.as_view(), name="bench-search"),
    path("bench/products/", BenchProductList.as_view(), name="bench-products"),
]
