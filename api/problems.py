"""RFC 9457 problem documents: the one shape of every API error, the handlers that turn exceptions into them, and
their OpenAPI description."""
import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:keyless-portal:problem:"

class Problem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str = "", headers: dict | None = None, **extra):
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers, self.extra = headers or {}, extra


def problem_response(request, status: int, slug: str, title: str, detail: str = "", headers=None, **extra):
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, **({"detail": detail} if detail else {}),
            "instance": request.path, **extra}
    response = JsonResponse(body, status=status, content_type=PROBLEM)
    for name, value in (headers or {}).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


PROBLEM_JSON_SCHEMA = {
    "type": "object", "title": "Problem", "description": "RFC 9457 problem details",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "instance": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "properties": {
                       "location": {"type": "string"}, "message": {"type": "string"}}}}},
    "required": ["type", "title", "status"]}


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses) -> dict:
    text = {400: "Bad request", 401: "No valid portal token", 403: "The role does not allow this",
            404: "Not found", 409: "Conflict", 422: "Invalid request", 429: "Rate limited",
            503: "Temporarily unavailable"}
    return {str(s): {"description": text[s], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}} for s in statuses}


def _problem(request, exc: Problem):
    return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)


def _invalid(request, exc: NinjaValidationError):
    errors = [{"location": ".".join(str(p) for p in e.get("loc", [])), "message": e.get("msg", "")}
              for e in exc.errors]
    return problem_response(request, 422, "invalid-request", "The request is not valid",
                            "; ".join(f"{e['location']}: {e['message']}" for e in errors), errors=errors)


def _refused(request, exc: DjangoValidationError):
    errors = ([{"location": f, "message": m} for f, ms in exc.message_dict.items() for m in ms]
              if hasattr(exc, "error_dict") else [{"location": "", "message": m} for m in exc.messages])
    return problem_response(request, 422, "invalid-request", "The request was refused",
                            " ".join(e["message"] for e in errors), errors=errors)


def _unauthenticated(request, exc):
    detail = getattr(request, "_api_auth_refusal", "") or "Send Authorization: Bearer <portal access token>; get " \
        "one from POST /api/v1/sts/exchange."
    return problem_response(request, 401, "unauthenticated", "Authentication required", detail,
                            {"WWW-Authenticate": 'Bearer realm="keyless-portal"'})


def _http_error(request, exc: HttpError):
    return problem_response(request, exc.status_code, "http-error", str(exc) or "Error")


def _not_found(request, exc):
    return problem_response(request, 404, "not-found", "Not found", str(exc) if str(exc) else "")


def _crashed(request, exc):
    logger.exception("API request %s %s failed", request.method, request.path)
    return problem_response(request, 500, "internal-error", "Internal error",
                            "The portal failed to answer; nothing about the request was the caller's fault.")


def not_found_view(request, rest=""):
    """Unknown paths under /api/v1/ answer a problem document too (not the portal's HTML 404 page)."""
    return problem_response(request, 404, "not-found", "Not found", f"No API route {request.path}.")


def problem_handlers_install(api) -> None:
    for exc_class, handler in ((Problem, _problem), (NinjaValidationError, _invalid), (DjangoValidationError, _refused),
                               (AuthenticationError, _unauthenticated), (HttpError, _http_error),
                               (Http404, _not_found), (Exception, _crashed)):
        api.add_exception_handler(exc_class, handler)
