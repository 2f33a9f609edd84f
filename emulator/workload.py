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

import jwt

from emulator.world import CLOUD_LOGIN_HOSTS

GITHUB_SUBJECT = re.compile(r"^repo:(?P<repository>[^/:\s]+/[^/:\s]+):ref:(?P<ref>\S+)$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def _response(*args, **kwargs):
    from emulator.server import Response

    return Response(*args, **kwargs)


def _sign(emu, claims: dict, kid: str):
    if kid not in emu.keys.signing:
        return _response(400, {"error": f"kid: one of {sorted(emu.keys.signing)}"})
    token = jwt.encode(claims, emu.keys.signing[kid], algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    return _response(200, {"token": token})


def control(emu, action: str, data: dict):
    world = emu.world
    if action == "workload/issuers":
        name = str(data.get("name", ""))
        if not NAME.match(name):
            return _response(400, {"error": "name: lower-case letters, digits and -"})
        issuer = f"{emu.base_url}/_issuers/{name}"
        with world.lock:
            if world.issuer(name) is None:
                world.data["oidc_issuers"].append({"name": name, "issuer": issuer})
                world.save()
        return _response(200, {"name": name, "issuer": issuer})
    now = int(emu.now())
    match = re.fullmatch(r"workload/issuers/([^/]+)/token", action)
    if match:
        issuer = world.issuer(match.group(1))
        if issuer is None:
            return _response(404, {"error": "unknown issuer"})
        subject = str(data.get("subject", "repo:contoso/infra:ref:refs/heads/main"))
        claims = {"iss": issuer["issuer"], "sub": subject, "aud": data.get("audience", "api://keyless-portal"),
                  "iat": now, "nbf": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        github = GITHUB_SUBJECT.match(subject)
        if github:  # the claims GitHub Actions puts beside `sub` (a FIC or a relying party may match on them)
            claims.update(repository=github["repository"], ref=github["ref"],
                          repository_owner=github["repository"].split("/")[0], event_name="push",
                          runner_environment="github-hosted")
        claims.update(data.get("claims") or {})
        return _sign(emu, claims, str(data.get("kid", "oidc-1")))
    if action == "workload/managed-identity/token":
        mi = world.identity(client_id=data.get("client_id"), principal_id=None, resource_id=None)
        if mi is None:
            return _response(404, {"error": "Identity not found"})
        tenant = world.tenant(mi["tenant"])
        v1 = str(data.get("version", "2.0")) == "1.0"
        issuer = (f"https://sts.windows.net/{tenant['id']}/" if v1
                  else f"https://{CLOUD_LOGIN_HOSTS[tenant['cloud']]}/{tenant['id']}/v2.0")
        claims = {"aud": data.get("resource", "api://keyless-portal"), "iss": issuer, "iat": now, "nbf": now,
                  "exp": now + 86399, "oid": mi["principal_id"], "sub": mi["principal_id"], "tid": tenant["id"],
                  "idtyp": "app", "ver": "1.0" if v1 else "2.0", "xms_mirid": mi["resource_id"],
                  "uti": uuid.uuid4().hex[:22]}
        claims.update({"appid": mi["client_id"], "appidacr": "2"} if v1 else {"azp": mi["client_id"], "azpacr": "2"})
        claims.update(data.get("claims") or {})
        return _sign(emu, claims, str(data.get("kid", "entra-1")))
    return _response(404, {"error": f"unknown control action {action}"})
