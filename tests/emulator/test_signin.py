"""The emulator's staff sign-in, on the wire: the sign-in page, code redemption with PKCE and a federated client
assertion, ID tokens with Entra's claims, and Entra's errors."""
import base64
import hashlib
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest

from emulator import signin_code
from emulator.world import HOME, MI_CLIENT_ID, SIGNIN_APP_ID, WEB_MI_CLIENT_ID

CALLBACK = "http://127.0.0.1:8000/signin/callback/"
ADELE = "b0000000-0000-4000-8000-000000000001"
PAT = "b0000000-0000-4000-8000-000000000006"
VERIFIER = "v" * 43


def _challenge(verifier=VERIFIER):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize_params(**extra):
    return {"client_id": SIGNIN_APP_ID, "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid profile",
            "state": "s1", "nonce": "n1", "code_challenge": _challenge(), "code_challenge_method": "S256", **extra}


def _code(emulator, http, user=ADELE, **extra):
    answer = http.post(f"{emulator.base_url}/{HOME}/oauth2/v2.0/authorize/decision",
                       data={**_authorize_params(**extra), "user": user}, allow_redirects=False)
    assert answer.status_code == 302
    query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert query["state"] == "s1"
    return query["code"]


def _mi_token(emulator, http, client_id=WEB_MI_CLIENT_ID):
    return http.get(f"{emulator.imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"},
                    params={"api-version": "2018-02-01", "resource": "api://AzureADTokenExchange",
                            "client_id": client_id}).json()["access_token"]


def _redeem(emulator, http, code, *, verifier=VERIFIER, redirect_uri=CALLBACK, identity=WEB_MI_CLIENT_ID,
            assertion=True):
    form = {"client_id": SIGNIN_APP_ID, "grant_type": "authorization_code", "code": code,
            "redirect_uri": redirect_uri, "code_verifier": verifier, "scope": "openid profile"}
    if assertion:
        form.update(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    client_assertion=_mi_token(emulator, http, identity))
    return http.post(f"{emulator.base_url}/{HOME}/oauth2/v2.0/token", data=form)


def test_the_sign_in_page_lists_the_directory_users_with_roles_and_mfa(emulator, emulator_http):
    page = emulator_http.get(f"{emulator.base_url}/{HOME}/oauth2/v2.0/authorize", params=_authorize_params())
    assert page.status_code == 200
    assert "Contoso MSSP Portal Sign-in" in page.text
    assert "adele@contoso-mssp.example" in page.text and "App roles: Portal.Admin · did MFA" in page.text
    assert "App roles: no app role" in page.text  # nestor
    assert "password only (no MFA)" in page.text  # pat


@pytest.mark.parametrize(("change", "code"), [
    ({"client_id": "00000000-0000-4000-8000-000000000bad"}, "AADSTS700016"),
    ({"client_id": "3f6b2c8e-1a4d-4e7b-9c2f-8d5e0a1b7c36", "redirect_uri": CALLBACK}, "AADSTS50011"),
    ({"redirect_uri": "https://evil.example/signin/callback/"}, "AADSTS50011"),
])
def test_authorize_errors_are_shown_on_microsofts_page(emulator, emulator_http, change, code):
    page = emulator_http.get(f"{emulator.base_url}/{HOME}/oauth2/v2.0/authorize", params=_authorize_params(**change),
                             allow_redirects=False)
    assert page.status_code == 400 and f"{code}:" in page.text  # never redirected to an unregistered URI


def test_unknown_tenant(emulator, emulator_http):
    page = emulator_http.get(f"{emulator.base_url}/nowhere.example/oauth2/v2.0/authorize", params=_authorize_params())
    assert page.status_code == 400 and "AADSTS90002" in page.text


def test_a_code_gives_an_id_token_with_entras_claims(emulator, emulator_http):
    response = _redeem(emulator, emulator_http, _code(emulator, emulator_http))
    assert response.status_code == 200
    body = response.json()
    keys = emulator_http.get(f"{emulator.base_url}/{HOME}/discovery/v2.0/keys").json()["keys"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=SIGNIN_APP_ID,
                        issuer=f"https://login.microsoftonline.com/{HOME}/v2.0")
    assert claims["tid"] == HOME and claims["oid"] == ADELE and claims["nonce"] == "n1"
    assert claims["preferred_username"] == "adele@contoso-mssp.example" and claims["ver"] == "2.0"
    assert claims["roles"] == ["Portal.Admin"] and claims["amr"] == ["pwd", "mfa"]
    assert "refresh_token" not in body


def test_amr_without_mfa(emulator, emulator_http):
    body = _redeem(emulator, emulator_http, _code(emulator, emulator_http, PAT)).json()
    assert jwt.decode(body["id_token"], options={"verify_signature": False})["amr"] == ["pwd"]


def test_a_code_is_single_use(emulator, emulator_http):
    code = _code(emulator, emulator_http)
    assert _redeem(emulator, emulator_http, code).status_code == 200
    again = _redeem(emulator, emulator_http, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.json()["error_codes"] == [54005]


def test_pkce_is_checked(emulator, emulator_http):
    response = _redeem(emulator, emulator_http, _code(emulator, emulator_http), verifier="w" * 43)
    assert response.json()["error"] == "invalid_grant" and response.json()["error_codes"] == [501481]


def test_the_redirect_uri_must_match_the_authorize_request(emulator, emulator_http):
    emulator.control.add_redirect_uris(app_id=SIGNIN_APP_ID, uris=["http://localhost:9000/signin/callback/"])
    response = _redeem(emulator, emulator_http, _code(emulator, emulator_http),
                       redirect_uri="http://localhost:9000/signin/callback/")
    assert response.json()["error_codes"] == [500112]


def test_an_unknown_or_expired_code(emulator, emulator_http):
    assert _redeem(emulator, emulator_http, "not-a-code").json()["error_codes"] == [70000]
    code = _code(emulator, emulator_http)
    signin_code.state_of(emulator).codes[code]["issued"] -= signin_code.CODE_SECONDS + 1
    assert _redeem(emulator, emulator_http, code).json()["error_codes"] == [70008]


def test_the_client_proves_itself_with_a_federated_credential(emulator, emulator_http):
    code = _code(emulator, emulator_http)
    missing = _redeem(emulator, emulator_http, code, assertion=False)
    assert missing.status_code == 401 and missing.json()["error_codes"] == [7000218]
    untrusted = _redeem(emulator, emulator_http, code, identity=MI_CLIENT_ID)  # the workers' identity
    assert untrusted.json()["error_codes"] == [70021]
    assert _redeem(emulator, emulator_http, code).status_code == 200  # the failed attempts did not use the code


def test_app_roles_and_mfa_change_through_the_control_endpoints(emulator, emulator_http):
    emulator.control.set_app_roles(user="adele@contoso-mssp.example", app_id=SIGNIN_APP_ID, roles=[])
    emulator.control.set_mfa(user=ADELE, on=False)
    claims = jwt.decode(_redeem(emulator, emulator_http, _code(emulator, emulator_http)).json()["id_token"],
                        options={"verify_signature": False})
    assert "roles" not in claims and claims["amr"] == ["pwd"]


def test_spoiling_the_next_id_token_only(emulator, emulator_http):
    emulator.control.spoil_next_id_token(set={"aud": "other"}, drop=["nonce"])
    first = jwt.decode(_redeem(emulator, emulator_http, _code(emulator, emulator_http)).json()["id_token"],
                       options={"verify_signature": False})
    second = jwt.decode(_redeem(emulator, emulator_http, _code(emulator, emulator_http)).json()["id_token"],
                        options={"verify_signature": False})
    assert first["aud"] == "other" and "nonce" not in first
    assert second["aud"] == SIGNIN_APP_ID and second["nonce"] == "n1"


def test_emulator_json_describes_the_sign_in_app(emulator):
    described = emulator.info["demo"]["signin"]
    assert described["app_id"] == SIGNIN_APP_ID and described["web_identity_client_id"] == WEB_MI_CLIENT_ID
    assert {"upn": "nestor@contoso-mssp.example", "roles": [], "mfa": True} in described["users"]
