"""Writes of the sign-in app: starting and completing a sign-in with Entra ID, the staff account it signs in (created
or updated, roles re-read from the directory every time), and the audit of refusals."""
import hashlib
import re
import time

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.ratelimit import RateLimitHit, rate_limit_hit
from portal.roles import ADMIN, ROLES
from portal.services import Actor, audit_record
from signin import oidc
from signin.backends import DirectoryBackend
from signin.models import DirectoryIdentity
from signin.oidc import SigninRefused
from signin.selectors import directory_identity_of

FLOWS = "signin_flows"  # session key: the flows started in this browser, by state (a few tabs at once)
MAX_FLOWS = 5
FLOW_SECONDS = 600  # as long as Entra's authorization code lives
DIRECTORY_BACKEND = f"{DirectoryBackend.__module__}.{DirectoryBackend.__qualname__}"


def _mapping(raw: str) -> dict[str, str]:
    """"Portal.Admin=admin,Portal.Viewer=viewer" → {value: portal role}; unknown portal roles are ignored."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {key.strip(): role.strip() for key, role in pairs if role.strip() in ROLES}


def roles_from_claims(claims: dict) -> list[str]:
    """The portal roles of the `roles` claim (app roles) and, as an alternative, of the `groups` claim (object ids)."""
    by_role = _mapping(settings.ENTRA_SIGNIN_ROLE_MAP)
    by_group = {k.lower(): v for k, v in _mapping(settings.ENTRA_SIGNIN_GROUP_MAP).items()}
    found = {by_role[r] for r in claims.get("roles") or [] if r in by_role}
    found |= {by_group[g.lower()] for g in claims.get("groups") or [] if isinstance(g, str) and g.lower() in by_group}
    return sorted(found)


def signin_start(*, session, next_url: str = "") -> str:
    """Begin a sign-in: keep MSAL's flow (state, nonce, PKCE verifier) in the session; the URL to send the browser."""
    flow = oidc.flow_initiate(oidc.config())
    now = time.time()
    flows = {s: f for s, f in (session.get(FLOWS) or {}).items() if now - f["at"] < FLOW_SECONDS}
    for stale in sorted(flows, key=lambda s: flows[s]["at"])[:max(0, len(flows) - MAX_FLOWS + 1)]:
        del flows[stale]
    flows[flow["state"]] = {"flow": flow, "next": next_url, "at": now}
    session[FLOWS] = flows
    return flow["auth_uri"]


def _flow_take(session, state: str) -> dict:
    """The flow this callback answers, removed from the session (single use), or SigninRefused("state")."""
    flows = dict(session.get(FLOWS) or {})
    entry = flows.pop(state, None) if state else None
    session[FLOWS] = flows
    if entry is None:
        raise SigninRefused("state", detail="No sign-in with this state was started in this browser (or it was "
                            "already completed).")
    if time.time() - entry["at"] > FLOW_SECONDS:
        raise SigninRefused("flow_expired", detail=f"Started more than {FLOW_SECONDS // 60} minutes ago.")
    return entry


def signin_complete(*, session, params: dict) -> tuple:
    """Check the callback, redeem its code, validate the ID token, sync the user: (user, next URL, claims)."""
    entry = _flow_take(session, str(params.get("state", "")))
    if params.get("error"):
        description = str(params.get("error_description", ""))[:500]
        code = re.match(r"AADSTS\d+", description)
        raise SigninRefused("entra_error", code=code.group(0) if code else str(params["error"])[:64],
                            detail=description.split(" Trace ID:")[0])
    if not params.get("code"):
        raise SigninRefused("malformed", detail="The answer carries neither a code nor an error.")
    cfg = oidc.config()
    raw = oidc.flow_redeem(cfg, entry["flow"], params)
    nonce_hash = hashlib.sha256(entry["flow"]["nonce"].encode("ascii")).hexdigest()  # what MSAL sent as nonce
    claims = oidc.id_token_validate(cfg, raw, nonce_hash=nonce_hash)
    del raw
    return directory_user_sync(claims=claims), entry["next"], claims


def _username_for(upn: str, oid: str, user_pk=None) -> str:
    base = re.sub(r"[^\w.@+-]", "_", upn)[:150] or oid
    taken = get_user_model().objects.filter(username=base).exclude(pk=user_pk).exists()
    return f"{base[:140]}+{oid[:8]}" if taken else base


def _set_roles(user, roles: list[str]) -> None:
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in roles))
    user._portal_roles = None


def directory_user_sync(*, claims: dict) -> object:
    """Create or update the staff account of a validated ID token; its roles become exactly what the directory
    grants now (so a role removed in Entra is gone at the next sign-in). Raises SigninRefused for a user with no
    mapped role (after removing any roles the account still had) or a disabled account."""
    oid, tid = str(claims["oid"]).lower(), str(claims["tid"]).lower()
    upn = str(claims.get("preferred_username") or claims.get("upn") or oid)[:255]
    name = str(claims.get("name", ""))[:256]
    roles = roles_from_claims(claims)
    who = {"oid": oid, "tid": tid, "upn": upn, "verified": True}
    now = timezone.now()
    with transaction.atomic():
        identity = directory_identity_of(tenant_id=tid, object_id=oid)
        if identity is None:
            if not roles:
                raise SigninRefused("no_role", identity=who, detail=_no_role_detail(claims))
            identity = _directory_user_create(tid=tid, oid=oid, upn=upn, name=name, roles=roles, now=now)
        user = identity.user
        if not user.is_active:
            raise SigninRefused("disabled", identity=who, detail="The portal account was deactivated.")
        before = sorted(identity.roles)
        if upn != identity.upn:
            user.username = _username_for(upn, oid, user.pk)
        user.is_staff = user.is_superuser or ADMIN in roles
        user.save(update_fields=["username", "is_staff"])
        _set_roles(user, roles)
        identity.upn, identity.display_name, identity.roles, identity.last_signed_in_at = upn, name, roles, now
        identity.save()
        if before != roles and identity.first_signed_in_at != now:
            audit_record(action="staff.roles_changed", actor=Actor.staff(user), target_type="user",
                         target_id=str(user.pk), detail={"before": before, "after": roles, "source": "entra"})
    if not roles:
        raise SigninRefused("no_role", identity=who, detail=_no_role_detail(claims))
    return user


def _directory_user_create(*, tid: str, oid: str, upn: str, name: str, roles: list[str], now) -> DirectoryIdentity:
    """A new staff account for a directory user's first sign-in (never with a usable password), audited."""
    user = get_user_model()(username=_username_for(upn, oid), is_staff=ADMIN in roles)
    user.set_unusable_password()
    user.full_clean()
    user.save()
    identity = DirectoryIdentity.objects.create(user=user, tenant_id=tid, object_id=oid, upn=upn, display_name=name,
                                                roles=[], first_signed_in_at=now, last_signed_in_at=now)
    audit_record(action="staff.created", actor=Actor.staff(user), target_type="user", target_id=str(user.pk),
                 detail={"username": user.username, "source": "entra", "roles": roles})
    return identity


def _no_role_detail(claims: dict) -> str:
    granted = ", ".join(claims.get("roles") or []) or "none"
    detail = f"App roles in the token: {granted}."
    if "groups" in (claims.get("_claim_names") or {}) or claims.get("hasgroups"):
        # Group overage: past 200 groups Entra leaves them out of the token (and points to Graph instead).
        detail += " The token leaves your groups out (too many to list): map app roles instead of groups."
    return detail


def signin_login(*, request, user, claims: dict) -> None:
    """Log the user in (a new session key), bounded by the maximum session age, and audit what the directory said."""
    login(request, user, backend=DIRECTORY_BACKEND)
    request.session.set_expiry(settings.SIGNIN_SESSION_MAX_AGE_SECONDS)
    audit_record(action="auth.sso_login", actor=Actor.staff(user), target_type="user", target_id=str(user.pk),
                 detail={"method": "entra", "roles": sorted(user.groups.filter(name__in=ROLES).values_list(
                     "name", flat=True)), "directory_roles": list(claims.get("roles") or []),
                     "amr": list(claims.get("amr") or [])}, ip=request.META.get("REMOTE_ADDR") or None)


def signin_refusal_record(*, refusal: SigninRefused, ip: str | None) -> None:
    identity = refusal.identity
    known = None
    if identity.get("oid") and identity.get("tid"):
        try:
            known = directory_identity_of(tenant_id=identity["tid"], object_id=identity["oid"])
        except ValidationError:  # a malformed claim is no UUID: nobody we know
            known = None
    audit_record(action="auth.sso_refused", actor=Actor.anonymous(ip), target_type="user" if known else "",
                 target_id=str(known.user_id) if known else "", tenant_id=identity.get("tid", "")[:64],
                 detail={"reason": refusal.reason, "code": refusal.code, "detail": refusal.detail[:500],
                         "identity": identity}, ip=ip)


def signin_rate_limit_hit(*, ip: str | None) -> RateLimitHit:
    """Sign-in attempts per client address and minute: refusals are audited, so a flood must not fill the trail
    (the first refusal of a minute and address is audited)."""
    hit = rate_limit_hit(scope="signin", key=str(ip), limit=settings.SIGNIN_RATE_LIMIT)
    if hit.first_refusal:
        audit_record(action="auth.sso_rate_limited", actor=Actor.anonymous(ip), ip=ip)
    return hit
