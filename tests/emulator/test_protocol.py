"""The emulator answers as Entra, IMDS, Graph and ARM do (ENTRA_FACTS.md): shapes, codes and limits."""
import json
import re
import subprocess
import sys
import time

import pytest
import requests

from emulator import world as demo

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _mi(http, emulator, resource="api://AzureADTokenExchange", **params):
    return http.get(f"{emulator.imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"},
                    params={"api-version": "2018-02-01", "resource": resource, "client_id": demo.MI_CLIENT_ID,
                            **params})


def _exchange(http, emulator, tenant, assertion, scope="https://management.azure.com/.default", app=demo.APP_ID):
    return http.post(f"{emulator.base_url}/{tenant}/oauth2/v2.0/token", data={
        "client_id": app, "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion, "scope": scope})


def _assert_entra_error(response, status, code):
    body = response.json()
    assert response.status_code == status and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert re.search(r"Trace ID: \S+ Correlation ID: \S+ Timestamp: ", body["error_description"])
    assert body["trace_id"] and body["correlation_id"] and body["timestamp"]


def test_discovery_by_domain_and_guid(emulator_http, emulator):
    doc = emulator_http.get(f"{emulator.base_url}/fabrikam.example/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"https://login.microsoftonline.com/{demo.FABRIKAM}/v2.0"
    assert doc["token_endpoint"] == f"{emulator.base_url}/{demo.FABRIKAM}/oauth2/v2.0/token"
    assert doc["tenant_region_scope"] == "NA"
    v1 = emulator_http.get(f"{emulator.base_url}/{demo.FABRIKAM}/.well-known/openid-configuration").json()
    assert v1["issuer"] == f"https://sts.windows.net/{demo.FABRIKAM}/"
    gov = emulator_http.get(f"{emulator.base_url}/agency.example/v2.0/.well-known/openid-configuration").json()
    assert gov["issuer"].startswith("https://login.microsoftonline.us/") and gov["tenant_region_scope"] == "USG"
    keys = emulator_http.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]
    _assert_entra_error(emulator_http.get(f"{emulator.base_url}/nope.example/v2.0/.well-known/openid-configuration"),
                        400, 90002)


def test_imds_shapes(emulator_http, emulator):
    missing = emulator_http.get(f"{emulator.imds_url}/metadata/identity/oauth2/token",
                                params={"api-version": "2018-02-01", "resource": "api://AzureADTokenExchange"})
    assert missing.status_code == 400 and missing.json()["error"] == "bad_request_102"
    first = _mi(emulator_http, emulator).json()
    assert all(isinstance(v, str) for v in first.values()) and 86000 < int(first["expires_in"]) <= 86399
    time.sleep(1.1)
    again = _mi(emulator_http, emulator).json()
    assert again["access_token"] == first["access_token"] and int(again["expires_in"]) < int(first["expires_in"])
    unknown = _mi(emulator_http, emulator, client_id="00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 400 and unknown.json() == {"error": "invalid_request",
                                                             "error_description": "Identity not found"}
    import jwt

    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "fb60f99c-7a34-4190-8149-302f77469936"
    assert claims["sub"] == claims["oid"] == demo.MI_PRINCIPAL_ID and claims["azp"] == demo.MI_CLIENT_ID
    assert claims["idtyp"] == "app" and claims["xms_mirid"].endswith("/keyless-worker") and claims["tid"] == demo.HOME
    assert jwt.get_unverified_header(first["access_token"])["kid"]


def test_token_endpoint_success_claims(emulator_http, emulator):
    import jwt

    mi = _mi(emulator_http, emulator).json()["access_token"]
    body = _exchange(emulator_http, emulator, demo.FABRIKAM, mi).json()
    assert body["expires_in"] == 3599
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["aud"], claims["tid"], claims["appid"]) == ("https://management.azure.com", demo.FABRIKAM,
                                                               demo.APP_ID)
    graph = _exchange(emulator_http, emulator, demo.HOME, mi, scope="https://graph.microsoft.com/.default").json()
    assert jwt.decode(graph["access_token"], options={"verify_signature": False})["roles"] == [
        "Application.ReadWrite.OwnedBy"]


@pytest.mark.parametrize("tenant, code", [(demo.NORTHWIND, 700016), ("unknown.example", 90002)])
def test_token_endpoint_tenant_errors(emulator_http, emulator, tenant, code):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    _assert_entra_error(_exchange(emulator_http, emulator, tenant, mi), 400, code)


def test_cross_cloud_and_bad_assertions(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    _assert_entra_error(_exchange(emulator_http, emulator, demo.USGOV, mi), 400, 90038)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, "not-a-jwt"), 400, 50027)
    tampered = mi[:-4] + ("AAAA" if not mi.endswith("AAAA") else "BBBB")
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, tampered), 401, 700027)
    emulator.control.clock(skew_seconds=-3600)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 700024)


def test_fic_in_another_tenant_is_700236(make_emulator, emulator_http):
    world = demo.demo_world()
    world["apps"][0]["tenant"] = demo.WOODGROVE  # the app lives elsewhere; its FIC still names the MI's issuer
    emu = make_emulator(world)
    emulator_http.verify = emu.ca_path
    mi = _mi(emulator_http, emu).json()["access_token"]
    _assert_entra_error(_exchange(emulator_http, emu, demo.FABRIKAM, mi), 400, 700236)


def test_disabled_app_and_unknown_resource(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi, scope="https://unknown.example/.default"),
                        400, 500011)
    emulator.control.disable_app(app_id=demo.APP_ID)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 7000112)


def test_fic_propagation_delay(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    token = _exchange(emulator_http, emulator, demo.HOME, mi, scope="https://graph.microsoft.com/.default").json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    fics = f"{emulator.base_url}/v1.0/applications(appId='{demo.APP_ID}')/federatedIdentityCredentials"
    emulator.control.fic_propagation(30)
    # Replace the working FIC with a new one: Entra refuses the new one for a while (70021).
    emulator_http.delete(f"{fics}/(name='keyless-worker')", headers=headers)
    created = emulator_http.post(fics, headers=headers, json={
        "name": "fresh", "issuer": f"https://login.microsoftonline.com/{demo.HOME}/v2.0",
        "subject": demo.MI_PRINCIPAL_ID, "audiences": ["api://AzureADTokenExchange"]})
    assert created.status_code == 201
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 70021)
    emulator.control.fic_propagation(0)
    assert "access_token" in _exchange(emulator_http, emulator, demo.FABRIKAM, mi).json()


def _graph(emulator_http, emulator, app=demo.APP_ID):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    token = _exchange(emulator_http, emulator, demo.HOME, mi, scope="https://graph.microsoft.com/.default").json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_graph_fic_validation(emulator_http, emulator):
    headers = _graph(emulator_http, emulator)
    base = f"{emulator.base_url}/v1.0//applications(appId='{demo.APP_ID}')/federatedIdentityCredentials"
    good = {"issuer": "https://token.actions.githubusercontent.com", "audiences": ["api://AzureADTokenExchange"]}
    assert emulator_http.post(base, headers=headers, json={**good, "name": "-bad", "subject": "a"}).status_code == 400
    assert emulator_http.post(base, headers=headers, json={**good, "name": "two", "subject": "b",
                                                           "audiences": ["x", "y"]}).status_code == 400
    duplicate = emulator_http.post(base, headers=headers, json={**good, "name": "keyless-worker", "subject": "c"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"
    for i in range(19):
        assert emulator_http.post(base, headers=headers, json={**good, "name": f"fic-{i}",
                                                               "subject": f"repo:x/y:{i}"}).status_code == 201
    full = emulator_http.post(base, headers=headers, json={**good, "name": "fic-20", "subject": "repo:x/y:20"})
    assert full.status_code == 400 and "20" in full.json()["error"]["message"]
    patched = emulator_http.patch(f"{base}/(name='fic-0')", headers=headers, json={"description": "updated"})
    assert patched.status_code == 204
    assert emulator_http.get(f"{base}/(name='fic-0')", headers=headers).json()["description"] == "updated"
    app = emulator_http.get(f"{emulator.base_url}/v1.0/applications(appId='{demo.APP_ID}')", headers=headers).json()
    assert app["signInAudience"] == "AzureADMultipleOrgs" and app["web"]["redirectUris"]
    sp = emulator_http.get(f"{emulator.base_url}/v1.0/servicePrincipals(appId='{demo.APP_ID}')", headers=headers)
    assert sp.json()["appId"] == demo.APP_ID


def test_graph_needs_permissions(make_emulator, emulator_http):
    world = demo.demo_world()
    world["graph_permissions"] = {}
    emu = make_emulator(world)
    emulator_http.verify = emu.ca_path
    headers = _graph(emulator_http, emu)
    denied = emulator_http.get(f"{emu.base_url}/v1.0/applications(appId='{demo.APP_ID}')/federatedIdentityCredentials",
                               headers=headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert emulator_http.get(f"{emu.base_url}/v1.0/applications(appId='{demo.APP_ID}')").status_code == 401


def test_arm_lists_only_subscriptions_with_a_role(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    tailspin = _exchange(emulator_http, emulator, demo.TAILSPIN, mi).json()["access_token"]
    headers = {"Authorization": f"Bearer {tailspin}"}
    listed = emulator_http.get(f"{emulator.base_url}/subscriptions", params={"api-version": "2022-12-01"},
                               headers=headers).json()
    assert listed["value"] == []
    refused = emulator_http.get(f"{emulator.base_url}/subscriptions/e1000000-0000-4000-8000-000000000003",
                                params={"api-version": "2022-12-01"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "AuthorizationFailed"
    emulator.control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID,
                              subscription_id="e1000000-0000-4000-8000-000000000003")
    listing = {"url": f"{emulator.base_url}/subscriptions", "params": {"api-version": "2022-12-01"},
               "headers": headers}
    assert len(emulator_http.get(**listing).json()["value"]) == 1
    emulator.control.remove_roles(tenant=demo.TAILSPIN, app_id=demo.APP_ID)
    assert emulator_http.get(**listing).json()["value"] == []


def test_consent_revocation_and_request_log(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    emulator.control.reset_requests()
    assert "access_token" in _exchange(emulator_http, emulator, demo.FABRIKAM, mi).json()
    emulator.control.revoke_consent(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 700016)
    counts = emulator.control.requests()
    assert counts["by_endpoint"] == {"token": 2} and counts["by_tenant"] == {demo.FABRIKAM: 2}


def test_faults_latency_and_retry_after(emulator_http, emulator):
    emulator.control.faults(token={"fail_next": 1, "fail_status": 429, "retry_after": 7}, imds={"latency_ms": 1500})
    with pytest.raises(requests.exceptions.ReadTimeout):  # the latency holds the answer back past the client's wait
        emulator_http.get(f"{emulator.imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"},
                          params={"api-version": "2018-02-01", "resource": "api://AzureADTokenExchange",
                                  "client_id": demo.MI_CLIENT_ID}, timeout=0.3)
    emulator.control.faults(imds={"latency_ms": 0})
    mi = _mi(emulator_http, emulator).json()["access_token"]
    throttled = _exchange(emulator_http, emulator, demo.FABRIKAM, mi)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert _exchange(emulator_http, emulator, demo.FABRIKAM, mi).status_code == 200
    emulator.control.faults(imds={"fail_next": 1, "fail_status": 410})
    assert _mi(emulator_http, emulator).status_code == 410


def test_state_survives_a_restart(tmp_path, emulator):
    import shutil

    from emulator.control import Control
    from emulator.server import Emulator

    for name in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "signing-entra.pem", "signing-oidc.pem"):
        shutil.copy(emulator.state_dir / name, tmp_path / name)
    with Emulator(demo.demo_world(), tmp_path) as first:
        Control(first.base_url, first.ca_path).revoke_consent(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    with Emulator(demo.demo_world(), tmp_path) as second:
        assert second.world.service_principal(demo.FABRIKAM, demo.APP_ID) is None
        info = json.loads((tmp_path / "emulator.json").read_text())
        assert info["base_url"] == second.base_url and info["demo"]["app"]["app_id"] == demo.APP_ID


def test_command_line_starts_and_writes_emulator_json(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--state-dir", str(tmp_path), "--port", "0",
                                "--imds-port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "emulator.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads((tmp_path / "emulator.json").read_text())
        assert info["ca_path"].endswith("ca.pem") and info["demo"]["managed_identity"]["client_id"] == demo.MI_CLIENT_ID
        assert {c["domain"]: c["consented"] for c in info["demo"]["customers"]}["fabrikam.example"] is True
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_customer_side_blocks_and_non_mi_assertions(emulator_http, emulator):
    mi = _mi(emulator_http, emulator).json()["access_token"]
    app_token = _exchange(emulator_http, emulator, demo.FABRIKAM, mi).json()["access_token"]
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, app_token), 400, 700222)
    emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 53003)
    emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID, on=False)
    emulator.control.disable_service_principal(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    _assert_entra_error(_exchange(emulator_http, emulator, demo.FABRIKAM, mi), 400, 500014)
