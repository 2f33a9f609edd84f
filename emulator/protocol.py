"""What every service of the emulator shares: the Response, Entra's error body, form parsing, token signing, issuers
and the bearer-token check (each service words its own errors). Imports nothing of the emulator but `world`.

Shapes and codes follow ENTRA_FACTS.md (shared/): errors carry `error_codes`, trace and correlation ids.
"""
import html
import json
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import jwt

from emulator.world import CLOUD_LOGIN_HOSTS

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HTML = "text/html; charset=utf-8"
SORRY = "Sorry, but we're having trouble signing you in."


class Response:
    def __init__(self, status=200, body=b"", content_type="application/json; charset=utf-8", headers=None):
        self.status, self.content_type, self.headers = status, content_type, dict(headers or {})
        self.body = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if not isinstance(body, str) else body.encode())


def entra_error_body(error: str, code: int, text: str) -> dict:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    prefix = f"AADSTS{code}: " if code else ""
    return {"error": error, "error_description": f"{prefix}{text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}", "error_codes": [code] if code else [], "timestamp": stamp, "trace_id": trace,
            "correlation_id": correlation, "error_uri": f"https://login.microsoftonline.com/error?code={code}"}


def entra_error(status: int, error: str, code: int, text: str) -> Response:
    return Response(status, entra_error_body(error, code, text))


def tenant_not_found(name: str) -> Response:
    return entra_error(400, "invalid_tenant", 90002, f"Tenant '{name}' not found. Check to make sure you have the "
                       "correct tenant ID and are signing into the correct cloud.")


def app_not_found(client_id: str, tenant: dict) -> Response:
    return entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found "
                       f"in the directory '{tenant['display_name']}'. This can happen if the application has not been "
                       "installed by the administrator of the tenant or consented to by any user in the tenant. You "
                       "may have sent your authentication request to the wrong tenant.")


def html_page(title: str, body: str, status=200, style: str = "") -> Response:
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title>" + (f"<style>{style}</style>" if style else "")
    return Response(status, f"<!doctype html><html><head>{head}</head><body>{body}</body></html>", content_type=HTML)


def redirect(redirect_uri: str, params: dict) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return Response(302, b"", headers={"Location": redirect_uri + separator + urlencode(params)})


def parse_form(body: bytes, keep_blank=False) -> dict:
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=keep_blank).items()}


def issuer_for(tenant: dict) -> str:
    return f"https://{CLOUD_LOGIN_HOSTS[tenant['cloud']]}/{tenant['id']}/v2.0"


def cloud_of_issuer(iss: str) -> str | None:
    for cloud, host in CLOUD_LOGIN_HOSTS.items():
        if iss.startswith(f"https://{host}/"):
            return cloud
    return None


def sign(emu, claims: dict, kid: str = "entra-1") -> str:
    return jwt.encode(claims, emu.keys.signing[kid], algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


# Why a bearer token was refused (each service words it its own way: ARM and Graph use different codes).
NO_HEADER, BAD_FORMAT, INVALID, EXPIRED, WRONG_AUDIENCE = "no_header", "bad_format", "invalid", "expired", "audience"


def read_bearer(emu, headers, resources) -> tuple[dict | None, str]:
    """(claims, "") for an Entra-signed, unexpired token for one of `resources`, else (claims or None, reason)."""
    auth = headers.get("Authorization")
    if not auth:
        return None, NO_HEADER
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, BAD_FORMAT
    try:
        claims = jwt.decode(token.strip(), emu.keys.signing["entra-1"].public_key(), algorithms=["RS256"],
                            options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        return None, INVALID
    if claims.get("exp", 0) < emu.now():
        return claims, EXPIRED
    if str(claims.get("aud", "")).rstrip("/") not in resources:
        return claims, WRONG_AUDIENCE
    return claims, ""
