"""Redeeming an authorization code at the token endpoint (`grant_type=authorization_code`, staff sign-in): the client
proves itself with a federated credential, the code is checked (70000, 54005, 70008, 500112, PKCE 501481) and spent,
and the answer carries a v2 ID token, an access token for Graph and `client_info`. The issued codes and the one-shot
ID-token spoiler live in `SigninState`, per emulator (`signin.py` issues the codes, the control endpoint sets the
spoiler).
"""
import base64
import hashlib
import threading
import time
import uuid

import jwt

from emulator.assertions import authenticate_client, has_assertion
from emulator.protocol import Response, app_not_found, entra_error, issuer_for, sign
from emulator.token import find_tenant

CODE_SECONDS = 600  # Entra's authorization codes live about 10 minutes
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


class SigninState:
    """Issued codes and the one-shot ID-token spoiler, per emulator."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codes: dict[str, dict] = {}
        self.spoil: dict | None = None

    def reset(self):
        with self.lock:
            self.codes.clear()
            self.spoil = None


def state_of(emu) -> SigninState:
    state = getattr(emu, "_signin", None)
    if state is None:
        state = emu._signin = SigninState()
    return state


def _pkce_ok(record: dict, verifier: str) -> bool:
    if not record["challenge"]:
        return True
    if record["method"] == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == record["challenge"]
    return verifier == record["challenge"]


def _authenticate_client(emu, tenant: dict, app: dict, form: dict):
    """The client proves itself with a federated credential: a managed-identity token as client assertion."""
    if not has_assertion(form):
        return entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                           "parameter: 'client_assertion' or 'client_secret'.")
    return authenticate_client(emu, tenant, app, form)


def _grant_error(code: int, text: str):
    return entra_error(400, "invalid_grant", code, text)


def _redeem(signin: SigninState, tenant: dict, app: dict, form: dict):
    """(the code's record, the spoiler of this ID token, None) or (None, None, the invalid_grant refusal)."""
    with signin.lock:
        record = signin.codes.get(form.get("code", ""))
        if record is None or record["tenant"] != tenant["id"]:
            return None, None, _grant_error(70000, "The provided value for the 'code' parameter is not valid.")
        if record["client_id"] != app["app_id"]:
            return None, None, _grant_error(70000, "The provided authorization code was issued to another client.")
        if record["used"]:
            return None, None, _grant_error(54005, "OAuth2 Authorization code was already redeemed, please retry "
                                            "with a new valid code or use an existing refresh token.")
        if time.time() - record["issued"] > CODE_SECONDS:
            return None, None, _grant_error(70008, "The provided authorization code or refresh token has expired due "
                                            "to inactivity. Send a new interactive authorization request for this "
                                            "user and resource.")
        if form.get("redirect_uri", "") != record["redirect_uri"]:
            return None, None, _grant_error(500112, f"The reply address '{form.get('redirect_uri', '')}' does not "
                                            f"match the reply address '{record['redirect_uri']}' provided when "
                                            "requesting Authorization code.")
        if not _pkce_ok(record, form.get("code_verifier", "")):
            return None, None, _grant_error(501481, "The Code_Verifier does not match the code_challenge supplied in "
                                            "the authorization request.")
        record["used"] = True
        spoil, signin.spoil = signin.spoil, None
    return record, spoil, None


def _id_token_claims(tenant: dict, app: dict, user: dict, record: dict, now: int) -> dict:
    pairwise = hashlib.sha256(f"{user['oid']}:{app['app_id']}".encode()).digest()
    claims = {"aud": app["app_id"], "iss": issuer_for(tenant), "iat": now, "nbf": now, "exp": now + 3600,
              "aio": uuid.uuid4().hex, "amr": ["pwd", "mfa"] if user.get("mfa") else ["pwd"],
              "name": user["display_name"], "oid": user["oid"], "preferred_username": user["upn"],
              "rh": "0.emulated.", "sid": str(uuid.uuid4()),
              "sub": base64.urlsafe_b64encode(pairwise).rstrip(b"=").decode()[:43], "tid": tenant["id"],
              "uti": uuid.uuid4().hex[:22], "ver": "2.0"}
    if record["nonce"]:
        claims["nonce"] = record["nonce"]
    roles, groups = user.get("app_roles", {}).get(app["app_id"], []), user.get("groups", [])
    if roles:
        claims["roles"] = list(roles)
    if groups:
        claims["groups"] = list(groups)
    return claims


def _spoiled(claims: dict, spoil: dict | None, now: int) -> str:
    """Apply the control endpoint's spoiler to the ID token's claims; the key to sign it with."""
    if not spoil:
        return "entra-1"
    claims.update(spoil.get("set", {}))
    if "exp_offset" in spoil:
        claims["exp"] = now + int(spoil["exp_offset"])
        claims["iat"] = claims["nbf"] = claims["exp"] - 3600
    for name in spoil.get("drop", []):
        claims.pop(name, None)
    return spoil.get("sign_with", "entra-1")


def token_by_code(emu, tenant_name: str, form: dict):
    world = emu.world
    with world.lock:
        tenant, refusal = find_tenant(world, tenant_name)
        if refusal is not None:
            return refusal
        app = world.app(form.get("client_id", ""))
        if app is None:
            return app_not_found(form.get("client_id", ""), tenant)
        record, spoil, error = None, None, _authenticate_client(emu, tenant, app, form)
        if error is None:
            record, spoil, error = _redeem(state_of(emu), tenant, app, form)
        if error:
            return error
        user = next((u for u in world.data.get("users", []) if u["oid"] == record["user"]), None)
        if user is None:
            return _grant_error(50034, "The user account does not exist in the directory.")
        now = int(emu.now())
        claims = _id_token_claims(tenant, app, user, record, now)
    key = _spoiled(claims, spoil, now)
    access = {"aud": GRAPH_APP_ID, "iss": f"https://sts.windows.net/{tenant['id']}/", "iat": now, "nbf": now,
              "exp": now + 3599, "appid": app["app_id"], "oid": user["oid"], "scp": "openid profile email User.Read",
              "tid": tenant["id"], "upn": user["upn"], "ver": "1.0"}
    client_info = base64.urlsafe_b64encode(f'{{"uid":"{user["oid"]}","utid":"{tenant["id"]}"}}'.encode())
    # The header names Entra's key even when the spoiler signs with another (a forged token, as the RP must see it).
    id_token = jwt.encode(claims, emu.keys.signing[key], algorithm="RS256", headers={"kid": "entra-1", "typ": "JWT"})
    return Response(200, {"token_type": "Bearer", "scope": "openid profile email User.Read", "expires_in": 3599,
                          "ext_expires_in": 3599, "access_token": sign(emu, access), "id_token": id_token,
                          "client_info": client_info.rstrip(b"=").decode()})
