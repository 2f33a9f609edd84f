"""The automation API's frame: the NinjaAPI instance, bearer authentication with portal tokens, roles per route,
the per-identity rate limit, Idempotency-Key handling and RFC 9457 problem responses for every error."""
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import NinjaJSONEncoder
from ninja.security.http import HttpAuthBase

from api import selectors, services
from api.models import IdentityProvider, PortalToken
from portal.roles import CAPABILITIES
from portal.services import Actor, audit_record, client_ip

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:keyless-portal:problem:"


# --- RFC 9457 problems -----------------------------------------------------------------------------------------------
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


class PortalAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        schema["components"].setdefault("schemas", {})["Problem"] = PROBLEM_JSON_SCHEMA
        return schema


api = PortalAPI(
    title="Keyless onboarding portal API", version="1", urls_namespace="api-v1", docs_url=None,
    openapi_url="/openapi.json",
    description="Automation API. Workloads exchange their platform token (an Azure managed identity, a GitHub "
                "Actions run, any OIDC issuer) for a short-lived portal token at POST /api/v1/sts/exchange, then call "
                "the API with `Authorization: Bearer <access_token>`. Errors are RFC 9457 problem documents.",
)


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    errors = [{"location": ".".join(str(p) for p in e.get("loc", [])), "message": e.get("msg", "")}
              for e in exc.errors]
    return problem_response(request, 422, "invalid-request", "The request is not valid",
                            "; ".join(f"{e['location']}: {e['message']}" for e in errors), errors=errors)


@api.exception_handler(DjangoValidationError)
def _refused(request, exc: DjangoValidationError):
    errors = ([{"location": f, "message": m} for f, ms in exc.message_dict.items() for m in ms]
              if hasattr(exc, "error_dict") else [{"location": "", "message": m} for m in exc.messages])
    return problem_response(request, 422, "invalid-request", "The request was refused",
                            " ".join(e["message"] for e in errors), errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    detail = getattr(request, "_api_auth_refusal", "") or "Send Authorization: Bearer <portal access token>; get " \
        "one from POST /api/v1/sts/exchange."
    return problem_response(request, 401, "unauthenticated", "Authentication required", detail,
                            {"WWW-Authenticate": 'Bearer realm="keyless-portal"'})


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem_response(request, exc.status_code, "http-error", str(exc) or "Error")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem_response(request, 404, "not-found", "Not found", str(exc) if str(exc) else "")


@api.exception_handler(Exception)
def _crashed(request, exc):
    logger.exception("API request %s %s failed", request.method, request.path)
    return problem_response(request, 500, "internal-error", "Internal error",
                            "The portal failed to answer; nothing about the request was the caller's fault.")


def not_found_view(request, rest=""):
    """Unknown paths under /api/v1/ answer a problem document too (not the portal's HTML 404 page)."""
    return problem_response(request, 404, "not-found", "Not found", f"No API route {request.path}.")


# --- authentication ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    portal_token: PortalToken
    provider: IdentityProvider
    subject: str

    @property
    def role(self) -> str:
        return self.provider.role

    @property
    def actor(self) -> Actor:
        return services.api_actor(self.provider, self.subject)

    @property
    def owner(self) -> str:
        return f"idp:{self.provider.pk}:{hashlib.sha256(self.subject.encode()).hexdigest()[:32]}"


class PortalBearer(HttpAuthBase):
    """`Authorization: Bearer kpt_…`; never logs the header (ninja's HttpBearer logs a malformed one in DEBUG)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        portal_token = selectors.portal_token_for(token)
        if portal_token is None:
            reason = selectors.portal_token_refusal(token)
            request._api_auth_refusal = {
                "revoked": "This portal token was revoked: exchange a new platform token.",
                "expired": "This portal token has expired: exchange a new platform token.",
            }.get(reason, "This is not a valid portal token: exchange a platform token at POST /api/v1/sts/exchange.")
            # A known token is someone's: its refused use is worth a trace (once a minute, not once a request).
            if reason != "unknown" and cache.add(f"api-refused:{services.token_hash(token)}", 1, 60):
                audit_record(action="api.token_refused", actor=Actor.anonymous(client_ip(request)),
                             target_type="portal_token", detail={"reason": reason}, ip=client_ip(request))
            return None
        caller = Caller(portal_token, portal_token.provider, portal_token.subject)
        wait = services.rate_limit_hit(key=caller.owner, limit=settings.API_RATE_LIMIT, actor=caller.actor,
                                       ip=client_ip(request))
        if wait is not None:
            raise Problem(429, "rate-limited", "Too many requests",
                          f"At most {settings.API_RATE_LIMIT} requests a minute per identity.",
                          {"Retry-After": str(wait)})
        services.portal_token_touch(portal_token=portal_token)
        return caller


bearer = PortalBearer()
api.auth = [bearer]  # every route needs a portal token unless it says auth=None


def caller_of(request) -> Caller:
    return request.auth


def require(request, capability: str) -> Caller:
    """`capability` is one of portal.roles.CAPABILITIES, or "any" (every role)."""
    caller = caller_of(request)
    if capability != "any" and caller.role not in CAPABILITIES[capability]:
        raise Problem(403, "forbidden", "Your role does not allow this",
                      f"This call needs the {capability!r} capability; the identity provider "
                      f"{caller.provider.name!r} grants the role {caller.role!r}.")
    return caller


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def _problem_responses(*statuses) -> dict:
    text = {400: "Bad request", 401: "No valid portal token", 403: "The role does not allow this",
            404: "Not found", 409: "Conflict", 422: "Invalid request", 429: "Rate limited",
            503: "Temporarily unavailable"}
    return {str(s): {"description": text[s], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}} for s in statuses}


def guarded(router, method: str, path: str, *, capability: str, idempotent: bool = False, **options):
    """Register a route that needs a portal token whose role has `capability` (documented in the OpenAPI document
    as x-required-capability). With `idempotent`, an Idempotency-Key header makes retries safe."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            require(request, capability)
            if idempotent and request.headers.get("Idempotency-Key"):
                return _idempotent(request, lambda: view(request, *args, **kwargs))
            return view(request, *args, **kwargs)

        extra = {"x-required-capability": capability,
                 "responses": _problem_responses(401, 403, 404, 422, 429, *((409,) if idempotent else ()))}
        for name, value in options.pop("openapi_extra", {}).items():
            extra[name] = {**extra.get(name, {}), **value} if isinstance(value, dict) else value
        if idempotent:
            extra["parameters"] = [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 255},
                                    "description": "Retries with the same key get the first answer back."}]
        return getattr(router, method)(path, openapi_extra=extra, **options)(wrapped)

    return decorator


# --- idempotency -----------------------------------------------------------------------------------------------------
def _idempotent(request, run):
    """Claim the key, run the request and record its answer in one transaction: the request's writes and its key
    commit together or not at all (an error leaves the key free for a fixed retry), and a concurrent duplicate waits
    on the key's row, then replays the answer."""
    caller = caller_of(request)
    key = request.headers["Idempotency-Key"].strip()
    if not key or len(key) > 255:
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", "1 to 255 characters.")
    digest = hashlib.sha256(request.body).hexdigest()
    with transaction.atomic():
        found = services.idempotency_claim(owner=caller.owner, key=key, method=request.method, path=request.path,
                                           request_hash=digest)
        if found is not None:
            return _replay(found)
        result = run()
        status, body = (result.status_code, result.value) if isinstance(result, Status) else (200, result)
        # An answer holding a secret shown once (a view's OnceOnly body) is not kept: only a note of what was done.
        stored = getattr(body, "idempotency_record", None)
        if stored is not None:
            stored = {"replay": False, **stored}
        else:  # as the response renders it (ninja's encoder: ISO dates with milliseconds and Z)
            stored = json.loads(json.dumps(_jsonable(body), cls=NinjaJSONEncoder))
        services.idempotency_store(owner=caller.owner, key=key, status=status, body=stored)
    return result


def _replay(found: services.Replay):
    if not found.same_request:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "This key was used for another request: use a new key for a new request.")
    if found.status is None:
        raise Problem(409, "idempotency-key-in-use", "Request in progress",
                      "A request with this Idempotency-Key is still running: retry in a moment.", {"Retry-After": "1"})
    if (found.body or {}).get("replay") is False:
        raise Problem(409, "not-replayable", "Already done; the answer is not kept",
                      found.body.get("detail", "The first request with this key succeeded."),
                      **{k: v for k, v in found.body.items() if k not in ("replay", "detail")})
    response = JsonResponse(found.body, status=found.status, safe=False)
    response["Idempotent-Replayed"] = "true"
    return response


def _jsonable(body):
    if hasattr(body, "model_dump"):
        return body.model_dump(mode="json")
    return body
