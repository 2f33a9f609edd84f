"""The token exchange (a workload's own token for a portal token) and its trust: identity providers, portal
tokens."""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Router, Status

from api import schemas as s
from api import selectors, services, sts
from api.api import caller_of, guarded
from api.models import IdentityProvider, PortalToken
from api.problems import Problem, problem_response, problem_responses
from api.routes.common import keyset_page
from portal.services import Actor, client_ip

# --- the token exchange ----------------------------------------------------------------------------------------------
sts_router = Router(tags=["token exchange"])


@sts_router.post("/exchange", auth=None, response={200: s.ExchangeOut}, openapi_extra={
    "x-required-capability": "none",
    "responses": problem_responses(400, 401, 422, 429, 503)})
def sts_exchange(request, body: s.ExchangeIn, response: HttpResponse):
    """Exchange a workload's platform token (Azure managed identity, GitHub Actions, any registered OIDC issuer) for
    a short-lived portal access token."""
    ip = client_ip(request)
    wait = services.rate_limit_hit(key=f"exchange:{ip}", limit=settings.API_EXCHANGE_RATE_LIMIT,
                                   actor=Actor.anonymous(ip), ip=ip)
    if wait is not None:
        raise Problem(429, "rate-limited", "Too many requests",
                      f"At most {settings.API_EXCHANGE_RATE_LIMIT} exchanges a minute per address.",
                      {"Retry-After": str(wait)})
    try:
        grant = sts.sts_exchange(audience=body.audience, issuer_uri=body.issuer_uri, jwt_token=body.jwt_token,
                                      ip=ip)
    except sts.ExchangeRefused as refused:
        title = {400: "Malformed token", 503: "Issuer unavailable"}.get(refused.status, "Token not accepted")
        return problem_response(request, refused.status, f"token-{refused.public.replace('_', '-')}", title,
                                sts.PUBLIC_DETAIL[refused.public],
                                {"Retry-After": "60"} if refused.status == 503 else None)
    response["Cache-Control"] = "no-store"  # a token response (RFC 6749 §5.1)
    return {"access_token": grant.token, "token_type": "Bearer", "expires_in": grant.expires_in,
            "expires_at": grant.portal_token.expires_at, "role": grant.provider.role,
            "identity_provider": grant.provider.name}


@guarded(sts_router, "post", "/revoke", capability="any", response={204: None})
def sts_revoke(request):
    """Revoke the portal token this request carries (a workload done with its session)."""
    caller = caller_of(request)
    services.portal_token_revoke(portal_token=caller.portal_token, actor=caller.actor, ip=client_ip(request))
    return Status(204, None)


# --- identity providers and portal tokens (admin) -----------------------------------------------------------------
trust = Router(tags=["identity providers"])


def _provider(p: IdentityProvider) -> dict:
    return {"id": p.pk, "created_at": p.created_at, **{f: getattr(p, f) for f in services.PROVIDER_FIELDS}}


@guarded(trust, "get", "/identity-providers", capability="administer", response=list[s.IdentityProviderOut])
def identity_provider_list(request):
    return [_provider(p) for p in selectors.identity_providers()]


@guarded(trust, "post", "/identity-providers", capability="administer", idempotent=True,
         response={201: s.IdentityProviderOut})
def identity_provider_create(request, body: s.IdentityProviderIn):
    provider = services.identity_provider_create(actor=caller_of(request).actor, **body.dict())
    return Status(201, _provider(provider))


@guarded(trust, "patch", "/identity-providers/{provider_id}", capability="administer", idempotent=True,
         response=s.IdentityProviderOut)
def identity_provider_update(request, provider_id: int, body: s.IdentityProviderPatch):
    provider = get_object_or_404(IdentityProvider, pk=provider_id)
    changes = {k: v for k, v in body.dict(exclude_unset=True).items() if v is not None}
    return _provider(services.identity_provider_update(provider=provider, actor=caller_of(request).actor, **changes))


def _portal_token(t: PortalToken) -> dict:
    return {"id": t.pk, "identity_provider": t.provider.name, "subject": t.subject, "issued_at": t.issued_at,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at,
            "active": t.active}


@guarded(trust, "get", "/portal-tokens", capability="administer", response=s.page_of(s.PortalTokenOut))
def portal_token_list(request, active: bool = False, cursor: str | None = None, limit: int = 100):
    tokens = PortalToken.objects.select_related("provider")
    if active:
        tokens = tokens.filter(revoked_at=None, expires_at__gt=timezone.now())
    return keyset_page(tokens, field="pk", descending=True, cursor=cursor, limit=limit, shape=_portal_token)


@guarded(trust, "post", "/portal-tokens/{token_id}/revoke", capability="administer", response=s.PortalTokenOut)
def portal_token_revoke(request, token_id: int):
    token = get_object_or_404(PortalToken.objects.select_related("provider"), pk=token_id)
    services.portal_token_revoke(portal_token=token, actor=caller_of(request).actor, ip=client_ip(request))
    return _portal_token(token)
