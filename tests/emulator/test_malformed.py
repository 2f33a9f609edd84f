"""Malformed requests get the answers Microsoft documents: the token endpoint's client-credentials refusals (tenant,
grant, client, scope, credential) and ARM's authentication and api-version errors; and the portal's classifier
(exchange.faults) reads each of them as a permanent failure with the right code, never a transient one."""
import pytest

from emulator import world as demo
from exchange.diagnosis import diagnose_code
from exchange.faults import ARM, PERMANENT, TENANT_TOKEN, classify
from tests.emulator.test_protocol import ASSERTION_TYPE, _assert_entra_error, _mi

FABRIKAM_SUB = "e1000000-0000-4000-8000-000000000001"
TAILSPIN_SUB = "e1000000-0000-4000-8000-000000000003"
ARM_SCOPE = "https://management.azure.com/.default"


def _form(assertion: str, **changes) -> dict:
    form = {"client_id": demo.APP_ID, "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": ARM_SCOPE}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}  # None: leave the parameter out


@pytest.fixture
def assertion(emulator_http, emulator):
    return _mi(emulator_http, emulator).json()["access_token"]


def _post(emulator_http, emulator, tenant, form, path="oauth2/v2.0/token"):
    return emulator_http.post(f"{emulator.base_url}/{tenant}/{path}", data=form)


def _portal_reads(response, code: str) -> None:
    failure = classify(TENANT_TOKEN, status=response.status_code, error=response.json())
    assert (failure.kind, failure.code) == (PERMANENT, code)
    assert diagnose_code(code).recognised, f"{code} has no diagnosis in exchange/diagnosis.py"


@pytest.mark.parametrize("tenant, status, error, code", [
    ("contoso", 400, "invalid_request", 900023),           # one label: neither a GUID nor a DNS name
    ("bad_tenant!", 400, "invalid_request", 900023),
    ("00000000-0000-4000-8000-00000000dead", 400, "invalid_tenant", 90002),
    ("nowhere.example", 400, "invalid_tenant", 90002),
    ("organizations", 400, "invalid_tenant", 90002),     # well-formed, but no one tenant to issue an app token in
])
def test_token_endpoint_tenants(emulator_http, emulator, assertion, tenant, status, error, code):
    response = _post(emulator_http, emulator, tenant, _form(assertion))
    _assert_entra_error(response, status, code)
    assert response.json()["error"] == error and f"'{tenant}'" in response.json()["error_description"]
    _portal_reads(response, f"AADSTS{code}")


@pytest.mark.parametrize("changes, status, error, code, named", [
    ({"grant_type": None}, 400, "invalid_request", 900144, "'grant_type'"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003, "'password'"),
    ({"client_id": None}, 400, "invalid_request", 900144, "'client_id'"),
    ({"scope": None}, 400, "invalid_request", 900144, "'scope'"),
    ({"scope": "https://management.azure.com/user_impersonation"}, 400, "invalid_scope", 1002012,
     "/.default suffixed"),
    ({"scope": "openid"}, 400, "invalid_scope", 1002012, "scope openid is not valid"),
    ({"scope": f"{ARM_SCOPE} https://graph.microsoft.com/.default"}, 400, "invalid_scope", 70011,
     "static scope limit exceeded"),
    ({"scope": "/.default"}, 400, "invalid_scope", 70011, "The scope /.default is not valid"),
    ({"client_assertion": None}, 401, "invalid_client", 7000216, "'client_credentials' grant type"),
    ({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, 401, "invalid_client",
     7000216, "'client_assertion', 'client_secret' or 'request' is required"),
    ({"client_assertion_type": None}, 401, "invalid_client", 7000216, "'client_assertion'"),
])
def test_client_credentials_parameters(emulator_http, emulator, assertion, changes, status, error, code, named):
    response = _post(emulator_http, emulator, demo.FABRIKAM, _form(assertion, **changes))
    _assert_entra_error(response, status, code)
    assert response.json()["error"] == error and named in response.json()["error_description"]
    _portal_reads(response, f"AADSTS{code}")


def test_parameters_are_checked_before_the_assertion(emulator_http, emulator):
    """A request that is malformed is refused for that, whatever its assertion (nothing is authenticated yet)."""
    response = _post(emulator_http, emulator, demo.FABRIKAM, _form("not-a-jwt", scope="openid"))
    _assert_entra_error(response, 400, 1002012)


def test_v1_endpoint_takes_resource(emulator_http, emulator, assertion):
    import jwt

    form = _form(assertion, scope=None, resource="https://management.azure.com")
    answer = _post(emulator_http, emulator, demo.FABRIKAM, form, path="oauth2/token").json()
    assert jwt.decode(answer["access_token"], options={"verify_signature": False})["aud"] == (
        "https://management.azure.com")
    missing = _post(emulator_http, emulator, demo.FABRIKAM, _form(assertion, scope=None), path="oauth2/token")
    _assert_entra_error(missing, 400, 900144)
    assert "'resource'" in missing.json()["error_description"]


def test_the_portal_still_recognises_its_codes(emulator_http, emulator, assertion):
    """Codes the chain meets in practice keep their diagnosis; a malformed request of the portal's own is one
    diagnosis that never sends the operator to the customer's tenant (the portal never sends such a request: it means
    a bug or a mis-set option of ours)."""
    emulator.control.revoke_consent(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    not_consented = _post(emulator_http, emulator, demo.FABRIKAM, _form(assertion))
    _portal_reads(not_consented, "AADSTS700016")
    assert diagnose_code("AADSTS700016").outcome == "not_consented"
    assert diagnose_code("AADSTS90002").outcome == "tenant_not_found"
    for code in (900023, 900144, 70003, 1002012, 70011, 7000216):
        diagnosis = diagnose_code(f"AADSTS{code}")
        assert (diagnosis.title, diagnosis.outcome) == ("Malformed token request", "error")
        assert diagnosis.fix_place != "tenant" and "Nothing in the customer's tenant" in diagnosis.cause


# --- ARM -------------------------------------------------------------------------------------------------------------
def _token(emulator_http, emulator, assertion, tenant=demo.FABRIKAM, scope=ARM_SCOPE) -> str:
    return _post(emulator_http, emulator, tenant, _form(assertion, scope=scope)).json()["access_token"]


def _arm(emulator_http, emulator, path="/subscriptions", token=None, api_version="2022-12-01", authorization=None):
    headers = {"Authorization": authorization or f"Bearer {token}"} if (token or authorization) else {}
    params = {"api-version": api_version} if api_version else {}
    return emulator_http.get(f"{emulator.base_url}{path}", params=params, headers=headers)


def _assert_arm_error(response, status: int, code: str, *, challenge: bool) -> None:
    body = response.json()
    assert response.status_code == status and body["error"]["code"] == code and body["error"]["message"]
    assert response.headers["x-ms-correlation-request-id"]
    if challenge:
        www = response.headers["WWW-Authenticate"]
        assert www.startswith('Bearer authorization_uri="https://login.windows.net/') and 'error="invalid_token"' in www
    else:
        assert "WWW-Authenticate" not in response.headers
    failure = classify(ARM, status=response.status_code, error=body)
    assert (failure.kind, failure.code) == (PERMANENT, code)
    if code in ("InvalidAuthenticationTokenTenant", "SubscriptionNotFound", "ExpiredAuthenticationToken"):
        assert diagnose_code(code).recognised and diagnose_code(code).fix_place != "tenant"


def test_arm_authentication_failures(emulator_http, emulator, assertion):
    missing = _arm(emulator_http, emulator, api_version=None)  # no token and no api-version: the token comes first
    _assert_arm_error(missing, 401, "AuthenticationFailed", challenge=True)
    assert "'Authorization' header is missing" in missing.json()["error"]["message"]
    for header in ("Basic dXNlcjpwYXNz", "Bearer"):
        malformed = _arm(emulator_http, emulator, authorization=header)
        _assert_arm_error(malformed, 401, "AuthenticationFailed", challenge=True)
        assert "invalid format" in malformed.json()["error"]["message"]
    _assert_arm_error(_arm(emulator_http, emulator, token="not-a-jwt"), 401, "InvalidAuthenticationToken",
                      challenge=True)
    emulator.control.workload_issuer("forger")  # a well-formed token, signed with a key Entra does not publish
    forged = emulator.control.workload_token("forger", subject="repo:a/b:ref:refs/heads/main",
                                             audience="https://management.azure.com")
    _assert_arm_error(_arm(emulator_http, emulator, token=forged), 401, "InvalidAuthenticationToken", challenge=True)


def test_arm_expired_wrong_audience_and_wrong_tenant(emulator_http, emulator, assertion):
    arm_token = _token(emulator_http, emulator, assertion)
    graph_token = _token(emulator_http, emulator, assertion, tenant=demo.HOME,
                         scope="https://graph.microsoft.com/.default")
    audience = _arm(emulator_http, emulator, token=graph_token)
    _assert_arm_error(audience, 401, "InvalidAuthenticationTokenAudience", challenge=True)
    assert "'https://graph.microsoft.com'" in audience.json()["error"]["message"]
    other = _arm(emulator_http, emulator, path=f"/subscriptions/{TAILSPIN_SUB}", token=arm_token)
    _assert_arm_error(other, 401, "InvalidAuthenticationTokenTenant", challenge=True)
    assert f"login.windows.net/{demo.TAILSPIN}" in other.headers["WWW-Authenticate"]
    unknown = _arm(emulator_http, emulator, path="/subscriptions/e1000000-0000-4000-8000-0000000000ff", token=arm_token)
    _assert_arm_error(unknown, 404, "SubscriptionNotFound", challenge=False)
    assert _arm(emulator_http, emulator, path=f"/subscriptions/{FABRIKAM_SUB}", token=arm_token).status_code == 200
    emulator.control.clock(skew_seconds=7200)  # ARM's now passes the token's expiry
    expired = _arm(emulator_http, emulator, token=arm_token)
    _assert_arm_error(expired, 401, "ExpiredAuthenticationToken", challenge=True)
    assert "is earlier than current UTC time" in expired.json()["error"]["message"]


def test_arm_api_version(emulator_http, emulator, assertion):
    token = _token(emulator_http, emulator, assertion)
    missing = _arm(emulator_http, emulator, token=token, api_version=None)
    _assert_arm_error(missing, 400, "MissingApiVersionParameter", challenge=False)
    assert "(?api-version=)" in missing.json()["error"]["message"]
    for path, version in (("/subscriptions", "2099-01-01"), (f"/subscriptions/{FABRIKAM_SUB}", "latest"),
                          (f"/subscriptions/{FABRIKAM_SUB}/resourceGroups/rg", "yesterday")):
        invalid = _arm(emulator_http, emulator, path=path, token=token, api_version=version)
        _assert_arm_error(invalid, 400, "InvalidApiVersionParameter", challenge=False)
        assert f"The api-version '{version}' is invalid" in invalid.json()["error"]["message"]
    listed = _arm(emulator_http, emulator, token=token, api_version="2020-01-01")
    assert listed.status_code == 200 and [s["subscriptionId"] for s in listed.json()["value"]] == [FABRIKAM_SUB]
