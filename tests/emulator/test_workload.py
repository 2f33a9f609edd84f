"""The emulator's workload tokens (emulator/workload.py): an OIDC issuer it serves over https, GitHub-style claims,
managed-identity tokens of both versions, signed with keys its JWKS publishes."""
import jwt
import pytest
import requests

from emulator.world import HOME, MI_CLIENT_ID, MI_PRINCIPAL_ID


def _verify(http, jwks_url: str, token: str, audience: str) -> dict:
    keys = {k["kid"]: k for k in http.get(jwks_url).json()["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.decode(token, jwt.PyJWK(keys[kid]).key, algorithms=["RS256"], audience=audience)


def test_registered_issuer_is_discoverable_and_signs_github_style_tokens(emulator, emulator_http):
    issuer = emulator.control.workload_issuer("ci")
    assert issuer == f"{emulator.base_url}/_issuers/ci"
    document = emulator_http.get(f"{issuer}/.well-known/openid-configuration").json()
    assert document["issuer"] == issuer
    token = emulator.control.workload_token("ci", subject="repo:contoso/infra:ref:refs/heads/main",
                                            audience="api://portal", claims={"environment": "prod"})
    claims = _verify(emulator_http, document["jwks_uri"], token, "api://portal")
    assert (claims["iss"], claims["repository"], claims["ref"], claims["environment"]) == (
        issuer, "contoso/infra", "refs/heads/main", "prod")
    assert claims["exp"] - claims["iat"] == 300


def test_managed_identity_tokens_of_both_versions(emulator, emulator_http):
    for version, issuer, client_claim in (("2.0", f"https://login.microsoftonline.com/{HOME}/v2.0", "azp"),
                                          ("1.0", f"https://sts.windows.net/{HOME}/", "appid")):
        token = emulator.control.managed_identity_token(client_id=MI_CLIENT_ID, resource="api://portal",
                                                        version=version)
        claims = _verify(emulator_http, f"{emulator.base_url}/{HOME}/discovery/v2.0/keys", token, "api://portal")
        assert (claims["iss"], claims["sub"], claims[client_claim], claims["ver"]) == (
            issuer, MI_PRINCIPAL_ID, MI_CLIENT_ID, version)
        discovery = "v2.0/.well-known/openid-configuration" if version == "2.0" else ".well-known/openid-configuration"
        assert emulator_http.get(f"{emulator.base_url}/{HOME}/{discovery}").json()["issuer"] == issuer


def test_refusals(emulator):
    with pytest.raises(requests.HTTPError, match="404"):
        emulator.control.workload_token("nobody", subject="s", audience="a")
    with pytest.raises(requests.HTTPError, match="400"):
        emulator.control.workload_issuer("Bad Name")
    emulator.control.workload_issuer("ci")
    with pytest.raises(requests.HTTPError, match="400"):
        emulator.control.workload_token("ci", subject="s", audience="a", kid="nope")
    with pytest.raises(requests.HTTPError, match="404"):
        emulator.control.managed_identity_token(client_id="00000000-0000-4000-8000-000000000000", resource="a")
