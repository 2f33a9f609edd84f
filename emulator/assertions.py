"""Client authentication with a federated credential, shared by both grants of the token endpoint (client credentials
in `token.py`, authorization code in `signin.py`): the client assertion's signature and validity, the kind of token it
is, and the FIC match (exact on issuer, subject (case-sensitive) and audience; the nearest miss names its code).
"""
import time
from datetime import UTC, datetime

import jwt

from emulator.protocol import ASSERTION_TYPE, cloud_of_issuer, entra_error
from emulator.world import EXCHANGE_AUDIENCES, TOKEN_EXCHANGE_APP_ID

FIC_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
CHECK_FIC = "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."


def _stamp(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%m/%d/%Y %H:%M:%S}"


def verify_assertion(emu, assertion: str):
    """(claims, None) or (None, error response)."""
    bad_signature = entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
    try:
        kid = jwt.get_unverified_header(assertion).get("kid")
    except jwt.PyJWTError:
        return None, entra_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    if kid not in emu.keys.signing:
        return None, bad_signature
    try:
        claims = jwt.decode(assertion, emu.keys.signing[kid].public_key(), algorithms=["RS256"],
                            options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                                     "verify_iat": False})
    except jwt.PyJWTError:
        return None, bad_signature
    now = emu.now()
    if claims.get("exp", 0) < now - 300 or claims.get("nbf", 0) > now + 300:
        return None, entra_error(400, "invalid_client", 700024, f"Client assertion is not within its valid time "
                                 f"range. Current time: {_stamp(now)}, assertion valid from "
                                 f"{_stamp(claims.get('nbf', 0))}, expiry time of assertion "
                                 f"{_stamp(claims.get('exp', 0))}.")
    return claims, None


def _aud_matches(fic_audience: str, token_aud) -> bool:
    auds = token_aud if isinstance(token_aud, list) else [token_aud]
    for aud in auds:
        if fic_audience == aud or (fic_audience in EXCHANGE_AUDIENCES.values() and aud == TOKEN_EXCHANGE_APP_ID):
            return True
    return False


def _exact_match_problem(emu, app: dict, fic: dict, claims: dict):
    """A FIC matched exactly: Entra may still refuse it (propagating, or an app in another tenant)."""
    iss, sub, aud = claims.get("iss", ""), claims.get("sub", ""), claims.get("aud", "")
    created = emu.world.fic_created_at.get(fic["id"])
    if created and time.time() - created < emu.fic_propagation_seconds:
        return entra_error(400, "invalid_request", 70021, "No matching federated identity record found for presented "
                           f"assertion. The incoming assertion has issuer '{iss}', subject '{sub}' and audience "
                           f"'{aud}'. {CHECK_FIC}")
    if claims.get("tid") and cloud_of_issuer(iss) and claims["tid"] != app["tenant"]:
        return entra_error(400, "invalid_request", 700236, f"Entra ID tokens issued by issuer '{iss}' may not be used "
                           "for federated identity credential flows for applications or managed identities "
                           "registered in a different tenant.")
    return None


def match_fic(emu, app: dict, claims: dict):
    """None when a FIC matches, else the error response Entra gives for the nearest miss."""
    iss, sub, aud = claims.get("iss", ""), claims.get("sub", ""), claims.get("aud", "")
    fics = app["fics"]
    exact = [f for f in fics if f["issuer"] == iss and f["subject"] == sub and _aud_matches(f["audiences"][0], aud)]
    if exact:
        return _exact_match_problem(emu, app, exact[0], claims)
    if any(f["subject"] == sub and _aud_matches(f["audiences"][0], aud) for f in fics):
        return entra_error(401, "invalid_client", 700211, "No matching federated identity record found for presented "
                           f"assertion issuer '{iss}'. {CHECK_FIC}")
    if any(f["issuer"] == iss and f["subject"] == sub for f in fics):
        return entra_error(401, "invalid_client", 700212, "No matching federated identity record found for presented "
                           f"assertion audience '{aud}'.")
    if any(f["issuer"] == iss and f["subject"].lower() == sub.lower() and _aud_matches(f["audiences"][0], aud)
           for f in fics):
        return entra_error(401, "invalid_client", 700213, "No matching federated identity record found for presented "
                           f"assertion subject '{sub}'. Subjects are case-sensitive.")
    return entra_error(400, "invalid_request", 70021, "No matching federated identity record found for presented "
                       f"assertion. The incoming assertion has issuer '{iss}', subject '{sub}' and audience '{aud}'. "
                       f"{CHECK_FIC} {FIC_DOCS}")


def has_assertion(form: dict) -> bool:
    """Entra reads `client_assertion` only beside the jwt-bearer assertion type; any other type is no credential."""
    return form.get("client_assertion_type") == ASSERTION_TYPE and bool(form.get("client_assertion"))


def authenticate_client(emu, tenant: dict, app: dict, form: dict):
    """None when the client's assertion is a managed-identity token that one of the app's FICs trusts, else the error.
    The caller has checked that an assertion is present (its missing-credential code depends on the grant)."""
    claims, error = verify_assertion(emu, form["client_assertion"])
    if error:
        return error
    cloud = cloud_of_issuer(claims.get("iss", ""))
    if cloud and cloud != tenant["cloud"]:
        return entra_error(400, "invalid_request", 90038, "Tenant is in a different national cloud than the "
                           "presented assertion; cross-cloud requests are not supported.")
    if cloud and (claims.get("idtyp") != "app" or "xms_mirid" not in claims):
        return entra_error(400, "invalid_request", 700222, "The assertion is an Entra ID token that is not an "
                           "app-only managed identity token.")
    if app.get("disabled"):
        return entra_error(400, "unauthorized_client", 7000112, f"Application '{app['app_id']}'"
                           f"({app['display_name']}) is disabled.")
    return match_fic(emu, app, claims)
