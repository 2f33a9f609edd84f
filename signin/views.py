"""Views of the sign-in with Entra ID: start (to Microsoft), callback (back from it), and the refusal page."""
import functools

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from portal.http import is_safe_next
from portal.services import client_ip
from signin import oidc, services
from signin.oidc import SigninRefused

# reason → (title, what happened and what to do, HTTP status). Shown as text; the audit event keeps the details.
REASONS = {
    "state": ("This sign-in didn't start here",
              "Microsoft's answer doesn't belong to a sign-in started in this browser, or it was already used. "
              "Nothing was signed in. Start again from the sign-in page.", 400),
    "flow_expired": ("This sign-in took too long", "Start again from the sign-in page.", 400),
    "entra_error": ("Microsoft Entra ID did not sign you in", "Microsoft answered with an error (below).", 403),
    "code_replayed": ("This sign-in was already used",
                      "Microsoft refused the sign-in code because it was already redeemed. Start again.", 400),
    "code_expired": ("This sign-in took too long", "Microsoft's sign-in code expired. Start again.", 400),
    "code_invalid": ("Microsoft refused the sign-in code",
                     "The code is not valid for this portal. Start again from the sign-in page.", 400),
    "pkce": ("Microsoft refused the sign-in code",
             "The code was requested by another sign-in (its PKCE proof does not match this one). Nothing was signed "
             "in. Start again from the sign-in page.", 400),
    "redirect_mismatch": ("The portal's sign-in is misconfigured",
                          "The redirect URI does not match the one registered on the sign-in app. Tell an admin.",
                          503),
    "configuration": ("The portal's sign-in is misconfigured",
                      "Microsoft refused the portal itself (its app or federated credential); you did nothing wrong. "
                      "Tell an admin the code below.", 503),
    "identity": ("The portal could not prove who it is",
                 "The portal's managed identity could not get its token; you did nothing wrong. Try again in a "
                 "minute, or tell an admin.", 503),
    "unavailable": ("Microsoft Entra ID did not answer", "Try again in a minute.", 503),
    "malformed": ("Microsoft's answer could not be read", "Nothing was signed in. Start again.", 400),
    "signature": ("The sign-in could not be verified",
                  "The ID token's signature does not verify with the tenant's published keys. Nothing was signed in.",
                  403),
    "issuer": ("The sign-in could not be verified", "The ID token was not issued by the portal's tenant.", 403),
    "tenant": ("Accounts of another organisation can't sign in here",
               "The ID token comes from another Entra tenant than the MSSP's own.", 403),
    "audience": ("The sign-in could not be verified", "The ID token was issued for another application.", 403),
    "expired": ("The sign-in could not be verified", "The ID token has expired. Check the server's clock, then start "
                "again.", 403),
    "not_yet_valid": ("The sign-in could not be verified", "The ID token is not valid yet. Check the server's "
                      "clock.", 403),
    "nonce": ("The sign-in could not be verified",
              "The ID token does not carry this sign-in's nonce (a replayed or injected token). Nothing was signed "
              "in.", 403),
    "mfa": ("Multi-factor authentication is required",
            "The portal accepts only sign-ins where Microsoft Entra ID checked a second factor. Sign in again with "
            "MFA.", 403),
    "no_role": ("Your account has no role in this portal",
                "You signed in, but the directory grants you none of the portal's app roles. Ask an admin to assign "
                "you one (viewer, operator, admin or auditor) in Entra ID.", 403),
    "disabled": ("Your portal account is deactivated", "Ask an admin.", 403),
    "not_configured": ("Sign-in with Microsoft is not set up", "Use the sign-in page.", 404),
}


def _refused(request, refusal: SigninRefused):
    services.signin_refusal_record(refusal=refusal, ip=client_ip(request))
    title, explanation, status = REASONS.get(refusal.reason, REASONS["malformed"])
    return render(request, "signin/refused.html", {"title": title, "explanation": explanation, "refusal": refusal},
                  status=status)


def _too_many(request, hit):
    response = render(request, "signin/refused.html", {"title": "Too many sign-in attempts", "explanation":
                                                           "Wait a minute, then start again."}, status=429)
    response["Retry-After"] = str(hit.retry_after)
    return response


def _safe_next(request, url: str) -> str:
    """The one check of a `next` (portal.http): a URL of this site, or nothing."""
    return url if is_safe_next(request, url) else ""


def _signin_step(view):
    """What both sign-in steps do first: 404 when sign-in with Microsoft is not set up, the per-address rate limit,
    and a refusal (SigninRefused) rendered as its page."""
    @functools.wraps(view)
    def step(request):
        if not oidc.configured():
            raise Http404("Sign-in with Microsoft is not set up.")
        hit = services.signin_rate_limit_hit(ip=client_ip(request))
        if hit.refused:
            return _too_many(request, hit)
        try:
            return view(request)
        except SigninRefused as refusal:
            return _refused(request, refusal)
    return never_cache(step)


@_signin_step
def start(request):
    next_url = _safe_next(request, request.GET.get("next", ""))
    return redirect(services.signin_start(session=request.session, next_url=next_url))


@_signin_step
def callback(request):
    params = {k: v[:4096] for k, v in request.GET.items()}  # Microsoft's redirect, capped
    user, next_url, claims = services.signin_complete(session=request.session, params=params)
    services.signin_login(request=request, user=user, claims=claims)
    return redirect(_safe_next(request, next_url) or "console:home")


def context_processor(request):
    """For the sign-in page: whether to offer "Sign in with Microsoft", and whether passwords are break-glass only."""
    return {"signin_with_microsoft": oidc.configured(), "password_signin": settings.PASSWORD_SIGNIN}
