"""The automation API under /api/v1/ (the routes live in api/routes/); any other /api/ path, and a method a route
does not take, answer a problem document too (not the portal's HTML pages)."""
from functools import wraps

from django.urls import path, re_path

from api import routes  # noqa: F401  (registers the routes on the API)
from api.api import api
from api.problems import PROBLEM, not_found_view, problem_response


def _method_problem(view):
    @wraps(view)  # keeps csrf_exempt: the API authenticates with bearer tokens, never cookies
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(PROBLEM):
            allowed = response.get("Allow", "")
            return problem_response(request, 405, "method-not-allowed", "Method not allowed",
                                    f"{request.method} is not allowed here; allowed: {allowed}.", {"Allow": allowed})
        return response

    return wrapped


# (Not unpacked into module names: include() would take a module-level `app_name` as this module's namespace.)
_api_urls = api.urls
for _pattern in _api_urls[0]:
    _pattern.callback = _method_problem(_pattern.callback)

urlpatterns = [
    path("api/v1/", _api_urls),
    re_path(r"^api/(?P<rest>.*)$", not_found_view),
]
