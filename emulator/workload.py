"""Workload tokens for the portal's automation API: what a GitHub Actions run or an Azure VM presents to a service
that trusts its platform (control endpoints under /_emulator/workload/, used by tests, benchmarks and the README).

- `POST workload/issuers {"name"}` registers an external OIDC issuer served by this emulator at
  `{base_url}/_issuers/{name}` (its discovery document and JWKS are the existing `/_issuers/` routes), so a client
  can discover it over https like token.actions.githubusercontent.com.
- `POST workload/issuers/{name}/token {"subject", "audience", "claims", "kid"}` mints a GitHub-style token of that
  issuer: `repository`, `ref`, `repository_owner` derived from a `repo:OWNER/REPO:ref:REF` subject, any claim
  (`exp`, `nbf`, `iat` too) replaced by `claims`.
- `POST workload/managed-identity/token {"client_id", "resource", "version", "claims"}` mints a managed-identity token
  as IMDS would, in version 2.0 (iss `https://login.microsoftonline.com/{tid}/v2.0`) or 1.0
  (iss `https://sts.windows.net/{tid}/`, `appid` instead of `azp`), signed with Entra's key.
"""
import re
import uuid

from emulator.protocol import Response, sign
from emulator.world import CLOUD_LOGIN_HOSTS

GITHUB_SUBJECT = re.compile(r"^repo:(?P<repository>[^/:\s]+/[^/:\s]+):ref:(?P<ref>\S+)$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def issuer_document(emu, path: str) -> Response:
    """`/_issuers/{name}/.well-known/openid-configuration` and `/_issuers/{name}/jwks` of an external OIDC issuer."""
    match = re.match(r"^/_issuers/([^/]+)/(\.well-known/openid-configuration|jwks)$", path)
    issuer = emu.world.issuer(match.group(1)) if match else None
    if issuer is None:
        return Response(404, {"error": "not_found"})
    if match.group(2) == "jwks":
        return Response(200, {"keys": [emu.keys.jwk("oidc-1")]})
    return Response(200, {"issuer": issuer["issuer"], "jwks_uri": f"{emu.base_url}/_issuers/{match.group(1)}/jwks",
                          "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                          "id_token_signing_alg_values_supported": ["RS256"]})


def _sign(emu, claims: dict, kid: str):
    if kid not in emu.keys.signing:
        return Response(400, {"error": f"kid: one of {sorted(emu.keys.signing)}"})
    return Response(200, {"token": sign(emu, claims, kid=kid)})


def _register_issuer(emu, data: dict) -> Response:
    name = str(data.get("name", ""))
    if not NAME.match(name):
        return Response(400, {"error": "name: lower-case letters, digits and -"})
    issuer = f"{emu.base_url}/_issuers/{name}"
    with emu.world.lock:
        if emu.world.issuer(name) is None:
            emu.world.data["oidc_issuers"].append({"name": name, "issuer": issuer})
            emu.world.save()
    return Response(200, {"name": name, "issuer": issuer})


def issuer_token(emu, name: str, data: dict, *, github: bool = True) -> Response:
    """A token of the external issuer `name`. `github`: GitHub-style (the claims GitHub Actions puts beside `sub`, a
    jti, 5 minutes, `claims` and `kid` honoured); else the plain token of `POST issuers/{name}/token` (10 minutes)."""
    issuer = emu.world.issuer(name)
    if issuer is None:
        return Response(404, {"error": "unknown issuer"})
    now = int(emu.now())
    subject = str(data.get("subject", "repo:contoso/infra:ref:refs/heads/main" if github
                           else "repo:contoso/app:ref:refs/heads/main"))
    claims = {"iss": issuer["issuer"], "sub": subject, "iat": now, "nbf": now,
              "aud": data.get("audience", "api://keyless-portal" if github else "api://AzureADTokenExchange")}
    if not github:
        return Response(200, {"token": sign(emu, {**claims, "exp": now + 600}, kid="oidc-1")})
    claims.update(exp=now + 300, jti=str(uuid.uuid4()))
    match = GITHUB_SUBJECT.match(subject)
    if match:  # the claims GitHub Actions puts beside `sub` (a FIC or a relying party may match on them)
        claims.update(repository=match["repository"], ref=match["ref"],
                      repository_owner=match["repository"].split("/")[0], event_name="push",
                      runner_environment="github-hosted")
    claims.update(data.get("claims") or {})
    return _sign(emu, claims, str(data.get("kid", "oidc-1")))


def _managed_identity_token(emu, data: dict) -> Response:
    world = emu.world
    mi = world.identity(client_id=data.get("client_id"), principal_id=None, resource_id=None)
    if mi is None:
        return Response(404, {"error": "Identity not found"})
    tenant = world.tenant(mi["tenant"])
    v1 = str(data.get("version", "2.0")) == "1.0"
    issuer = (f"https://sts.windows.net/{tenant['id']}/" if v1
              else f"https://{CLOUD_LOGIN_HOSTS[tenant['cloud']]}/{tenant['id']}/v2.0")
    now = int(emu.now())
    claims = {"aud": data.get("resource", "api://keyless-portal"), "iss": issuer, "iat": now, "nbf": now,
              "exp": now + 86399, "oid": mi["principal_id"], "sub": mi["principal_id"], "tid": tenant["id"],
              "idtyp": "app", "ver": "1.0" if v1 else "2.0", "xms_mirid": mi["resource_id"],
              "uti": uuid.uuid4().hex[:22]}
    claims.update({"appid": mi["client_id"], "appidacr": "2"} if v1 else {"azp": mi["client_id"], "azpacr": "2"})
    claims.update(data.get("claims") or {})
    return _sign(emu, claims, str(data.get("kid", "entra-1")))


def control(emu, action: str, data: dict) -> Response:
    if action == "workload/issuers":
        return _register_issuer(emu, data)
    match = re.fullmatch(r"workload/issuers/([^/]+)/token", action)
    if match:
        return issuer_token(emu, match.group(1), data)
    if action == "workload/managed-identity/token":
        return _managed_identity_token(emu, data)
    return Response(404, {"error": f"unknown control action {action}"})
