"""The automation API under /api/v1/ (the routes live in api/views.py); any other /api/ path is a problem document."""
from django.urls import path, re_path

from api import views  # noqa: F401  (registers the routes on the API)
from api.api import api, not_found_view

urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", not_found_view),
]
