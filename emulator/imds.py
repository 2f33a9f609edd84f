"""IMDS on the plain-HTTP port: `GET /metadata/identity/oauth2/token`, as on an Azure VM (ENTRA_FACTS.md, IMDS).

Values are strings; the token is cached per (identity, resource) and handed back with a shrinking `expires_in` while it
has more than 5 minutes left.
"""
import time
import uuid

from emulator.protocol import Response, issuer_for, sign
from emulator.world import EXCHANGE_AUDIENCES, TOKEN_EXCHANGE_APP_ID

API_VERSIONS = ("2018-02-01", "2019-08-01", "2019-11-01", "2021-02-01")
SELECTORS = ("client_id", "object_id", "msi_res_id")


def _refused(error: str, text: str) -> Response:
    return Response(400, {"error": error, "error_description": text})


def _request_problem(query, headers) -> Response | None:
    if headers.get("Metadata", "").lower() != "true":
        return _refused("bad_request_102", "Required metadata header not specified")
    if query.get("api-version") not in API_VERSIONS:
        return _refused("invalid_request", "Invalid or missing api-version")
    if not query.get("resource", ""):
        return _refused("invalid_resource", "AADSTS500011: resource required")
    if len([k for k in SELECTORS if query.get(k)]) > 1:
        return _refused("invalid_request", "Only one identity selector allowed")
    return None


def _mint(emu, mi: dict, resource: str, now: int) -> dict:
    tenant = emu.world.tenant(mi["tenant"])
    aud = TOKEN_EXCHANGE_APP_ID if resource.rstrip("/") in EXCHANGE_AUDIENCES.values() else resource
    claims = {"aud": aud, "iss": issuer_for(tenant), "iat": now, "nbf": now, "exp": now + 86399,
              "aio": uuid.uuid4().hex, "azp": mi["client_id"], "azpacr": "2", "idtyp": "app",
              "oid": mi["principal_id"], "rh": "0.emulated.", "sub": mi["principal_id"], "tid": tenant["id"],
              "uti": uuid.uuid4().hex[:22], "ver": "2.0", "xms_mirid": mi["resource_id"]}
    return {"token": sign(emu, claims), "exp": claims["exp"], "iat": now}


def token(emu, query, headers) -> Response:
    problem = _request_problem(query, headers)
    if problem:
        return problem
    resource = query["resource"]
    mi = emu.world.identity(client_id=query.get("client_id"), principal_id=query.get("object_id"),
                            resource_id=query.get("msi_res_id"))
    if mi is None or not any(query.get(k) for k in SELECTORS):
        return _refused("invalid_request", "Identity not found")
    now = int(time.time())  # the VM's IMDS is not skewed: clock skew shows at the token endpoint (700024)
    key = (mi["client_id"], resource)
    with emu.mi_cache_lock:
        cached = emu.mi_cache.get(key)
        if cached is None or cached["exp"] - now < 300:
            cached = emu.mi_cache[key] = _mint(emu, mi, resource, now)
    left = str(cached["exp"] - now)
    return Response(200, {"access_token": cached["token"], "client_id": mi["client_id"], "expires_in": left,
                          "expires_on": str(cached["exp"]), "ext_expires_in": left,
                          "not_before": str(cached["iat"]), "resource": resource, "token_type": "Bearer"})
