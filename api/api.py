"""The automation API's frame: the NinjaAPI instance, bearer authentication with portal tokens, roles per route,
the per-identity rate limit; Idempotency-Key handling (api/idempotency.py) and RFC 9457 problem responses for every
error (api/problems.py)."""
import hashlib
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.security.http import HttpAuthBase

from api import selectors, services
from api.idempotency import idempotent_run
from api.models import IdentityProvider, PortalToken
from api.problems import PROBLEM_JSON_SCHEMA, Problem, problem_handlers_install, problem_responses
from portal.roles import CAPABILITIES
from portal.services import Actor, audit_record, client_ip

PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:keyless-portal:problem:"


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


problem_handlers_install(api)


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


def guarded(router, method: str, path: str, *, capability: str, idempotent: bool = False, **options):
    """Register a route that needs a portal token whose role has `capability` (documented in the OpenAPI document
    as x-required-capability). With `idempotent`, an Idempotency-Key header makes retries safe."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            require(request, capability)
            if idempotent and request.headers.get("Idempotency-Key"):
                return idempotent_run(request, lambda: view(request, *args, **kwargs), owner=caller_of(request).owner)
            return view(request, *args, **kwargs)

        extra = {"x-required-capability": capability,
                 "responses": problem_responses(401, 403, 404, 422, 429, *((409,) if idempotent else ()))}
        for name, value in options.pop("openapi_extra", {}).items():
            extra[name] = {**extra.get(name, {}), **value} if isinstance(value, dict) else value
        if idempotent:
            extra["parameters"] = [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 255},
                                    "description": "Retries with the same key get the first answer back."}]
        return getattr(router, method)(path, openapi_extra=extra, **options)(wrapped)

    return decorator
