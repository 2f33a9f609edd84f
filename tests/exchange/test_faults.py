"""faults.classify against each library behaviour ENTRA_FACTS names (MSAL's replays and exceptions, urllib3, requests,
httpx/azure-core/msgraph, Redis and the database), produced for real where they can be (the emulator, a closed port),
and the one status rule and Retry-After parser."""
import email.utils
import socket

import httpx
import pytest
import requests
import urllib3
from django.db.utils import OperationalError
from msal.exceptions import MsalServiceError

from emulator import world as demo
from exchange import entra, faults, imds
from exchange.faults import (
    ARM,
    HOME_TOKEN,
    IMDS,
    INFRASTRUCTURE,
    PERMANENT,
    TENANT_DISCOVERY,
    TENANT_TOKEN,
    TRANSIENT,
    classify,
    retry_after_seconds,
    transient_status,
)
from exchange.http import NoAnswer, OutboundClient, wire


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("status, endpoint, transient", [
    (429, TENANT_TOKEN, True), (500, ARM, True), (503, TENANT_DISCOVERY, True), (504, IMDS, True),
    (410, IMDS, True), (404, IMDS, True), (404, ARM, False), (410, TENANT_TOKEN, False), (400, TENANT_TOKEN, False),
    (401, HOME_TOKEN, False), (403, ARM, False), (200, ARM, False), (None, ARM, False),
])
def test_one_status_rule(status, endpoint, transient):
    assert transient_status(status, endpoint=endpoint) is transient


def test_one_retry_after_parser():
    now = 1_700_000_000.0  # a fixed instant: the answer depends on it, never on the clock of the test run
    soon = email.utils.formatdate(now + 120, usegmt=True)
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds(" 1.5 ") == 1.5 and retry_after_seconds(3) == 3.0
    assert retry_after_seconds(soon, now=now) == 120.0
    assert retry_after_seconds(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0  # a date gone by
    assert retry_after_seconds("-3") == 0.0
    for garbage in (None, "", "soon", "nan", "inf", "Mon, 99 Foo"):
        assert retry_after_seconds(garbage) is None


def _client(portal_on_emulator, tenant_id):
    from exchange.chain_tokens import _assertion

    return entra.confidential_client(login_base=portal_on_emulator.info["base_url"], tenant_id=tenant_id,
                                     client_id=demo.APP_ID,
                                     assertion=_assertion(portal_on_emulator.identity, "api://AzureADTokenExchange"))


def test_msal_replaying_a_throttled_answer(portal_on_emulator, settings):
    """MSAL answers an identical request from its throttle cache while Retry-After runs: an error dict with no
    request on the wire. classify sees it as the 429 it replays, with what is left of the wait."""
    portal_on_emulator.control.fail_next("token", 1, status=429, retry_after=20, tenant=demo.HOME)
    client = _client(portal_on_emulator, demo.HOME)
    scope = "https://management.azure.com/.default"
    first = entra.client_credentials(client, scope)
    again = entra.client_credentials(client, scope)
    assert (first.on_wire, first.http_status, first.retry_after, first.replayed) == (True, 429, 20, False)
    assert (again.on_wire, again.replayed, again.http_status) == (False, True, 429)
    assert again.result["error"] == "temporarily_unavailable" and not again.result.get("error_codes")
    failure = classify(HOME_TOKEN, status=again.http_status, error=again.result, retry_after=again.retry_after,
                       replayed=True)
    assert (failure.kind, failure.code, failure.http_status) == (TRANSIENT, "transient", 429)
    assert 0 < failure.retry_after <= 20
    # MSAL calls the assertion even for a replay: a renewed MI token puts IMDS on the wire first, not the token POST.
    imds.reset_clients()
    renewed = entra.client_credentials(client, scope)
    assert (renewed.on_wire, renewed.replayed, renewed.http_status) == (False, True, 429)
    assert wire().url.startswith(settings.IMDS_URL)
    # Replayed in a process that never saw the original answer: still transient, for MSAL's own 5 s.
    blind = classify(HOME_TOKEN, error=again.result, replayed=True)
    assert (blind.kind, blind.retry_after) == (TRANSIENT, faults.MSAL_REPLAY_SECONDS)


def test_msal_replaying_a_400_keeps_its_aadsts_code():
    replay = {"error": "invalid_client", "error_description": "AADSTS700213: ...", "error_codes": [700213]}
    failure = classify(HOME_TOKEN, error=replay, replayed=True)
    assert (failure.kind, failure.code) == (PERMANENT, "AADSTS700213")


@pytest.mark.parametrize("status, kind", [(429, TRANSIENT), (404, PERMANENT)])
def test_msal_value_error_on_discovery_is_classified_by_the_status_on_the_wire(portal_on_emulator, status, kind):
    """MSAL raises the same ValueError for both: only the status on the wire tells them apart."""
    portal_on_emulator.control.fail_next("discovery", 1, status=status, retry_after=8, tenant=demo.FABRIKAM)
    with pytest.raises(ValueError) as raised:
        _client(portal_on_emulator, demo.FABRIKAM)
    record = wire()
    failure = classify(TENANT_DISCOVERY, exc=raised.value, status=record.status, error=record.error,
                       retry_after=record.retry_after)
    assert (failure.kind, failure.http_status) == (kind, status)
    assert (failure.retry_after, failure.code) == ((8, "transient") if kind == TRANSIENT else (None, failure.error))


def test_msal_value_error_for_an_unknown_tenant_is_aadsts90002(portal_on_emulator):
    with pytest.raises(ValueError) as raised:
        _client(portal_on_emulator, "0badc0de-0000-4000-8000-000000000000")
    record = wire()
    failure = classify(TENANT_DISCOVERY, exc=raised.value, status=record.status, error=record.error)
    assert (failure.kind, failure.code, failure.error, failure.http_status) == (
        PERMANENT, "AADSTS90002", "invalid_tenant", 400)


def test_msal_service_error_on_a_5xx_discovery_or_token(portal_on_emulator):
    portal_on_emulator.control.fail_next("discovery", 1, status=503, retry_after=4, tenant=demo.FABRIKAM)
    with pytest.raises(MsalServiceError) as raised:
        _client(portal_on_emulator, demo.FABRIKAM)
    record = wire()
    failure = classify(TENANT_DISCOVERY, exc=raised.value, status=record.status, retry_after=record.retry_after)
    assert (failure.kind, failure.http_status, failure.retry_after) == (TRANSIENT, 503, 4)
    # Replayed by MSAL (nothing on the wire): the status is read from MSAL's "HTTP Error: 503".
    replayed = classify(TENANT_TOKEN, exc=MsalServiceError("HTTP Error: 503", error=None, error_description=None),
                        replayed=True)
    assert (replayed.kind, replayed.http_status, replayed.retry_after) == (TRANSIENT, 503, 5.0)


def test_urllib3_timeouts_and_refusals(portal_on_emulator, settings):
    settings.ENTRA_HTTP_TIMEOUT = 0.2
    portal_on_emulator.control.faults(arm={"latency_ms": 1000})
    with pytest.raises(NoAnswer) as timed_out:
        OutboundClient().get(f"{portal_on_emulator.info['base_url']}/subscriptions")
    with pytest.raises(NoAnswer) as refused:
        OutboundClient().get(f"https://127.0.0.1:{_closed_port()}/subscriptions")
    assert classify(ARM, exc=timed_out.value).message == "No answer from Azure Resource Manager: it timed out."
    assert classify(ARM, exc=refused.value).message == (
        "No answer from Azure Resource Manager: the connection was refused or could not be made.")
    raw = urllib3.exceptions.ReadTimeoutError(None, "/token", "Read timed out.")
    assert (classify(HOME_TOKEN, exc=raw).kind, classify(HOME_TOKEN, exc=raw).message) == (
        TRANSIENT, "No answer from the token endpoint: it timed out.")


def test_requests_and_httpx_connection_refused():
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(requests.exceptions.ConnectionError) as by_requests:
        requests.get(url, timeout=5)
    with pytest.raises(httpx.ConnectError) as by_httpx:
        httpx.get(url, timeout=5)
    for exc in (by_requests.value, by_httpx.value):
        failure = classify(IMDS, exc=exc)
        assert (failure.kind, failure.message) == (
            TRANSIENT, "IMDS did not answer: the connection was refused or could not be made.")


def test_azure_core_and_msgraph_errors():
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from kiota_abstractions.api_error import APIError

    for exc in (ServiceRequestError("no connection"), ServiceResponseError("connection reset")):
        assert classify(HOME_TOKEN, exc=exc).kind == TRANSIENT
    assert classify(HOME_TOKEN, exc=APIError("throttled", response_status_code=429)).kind == TRANSIENT
    forbidden = classify(HOME_TOKEN, exc=APIError("Authorization_RequestDenied", response_status_code=403))
    assert (forbidden.kind, forbidden.http_status) == (PERMANENT, 403)


def test_our_own_infrastructure_is_never_the_tenants(settings):
    import redis

    with pytest.raises(redis.exceptions.ConnectionError) as redis_down:
        redis.Redis(port=_closed_port(), socket_connect_timeout=1).get("oidc:x")
    for exc in (redis_down.value, OperationalError("server closed the connection unexpectedly"),
                KeyError("no-such-cloud"), RuntimeError("a bug")):
        failure = classify(TENANT_DISCOVERY, exc=exc)
        assert (failure.kind, failure.code, failure.retry_after) == (INFRASTRUCTURE, "infrastructure", None)
        assert not failure.transient


@pytest.mark.parametrize("status, error, kind, code", [
    (410, {"error": "gone"}, TRANSIENT, "transient"),
    (429, {"error": "temporarily_unavailable"}, TRANSIENT, "transient"),
    (500, {"error": "unknown"}, TRANSIENT, "transient"),
    (404, {"error": "not_found"}, TRANSIENT, "transient"),
    (400, {"error": "invalid_request", "error_description": "Identity not found"}, PERMANENT,
     "IMDS:identity_not_found"),
    (400, {"error": "bad_request_102"}, PERMANENT, "IMDS:bad_request_102"),
    (None, {"error": "temporarily_unavailable"}, TRANSIENT, "transient"),  # MSAL's MI client replaying a 429
])
def test_imds_answers(status, error, kind, code):
    failure = classify(IMDS, status=status, error=error, replayed=status is None)
    assert (failure.kind, failure.code) == (kind, code)


@pytest.mark.parametrize("status, codes, kind, code", [
    (400, [70021], PERMANENT, "AADSTS70021"),
    (400, [700016], PERMANENT, "AADSTS700016"),
    (401, [7000112], PERMANENT, "AADSTS7000112"),
    (400, [90033], TRANSIENT, "transient"),  # MsodsServiceUnavailable: "a transient error has occurred"
    (400, [90055], TRANSIENT, "transient"),  # TenantThrottlingThreshold
    (503, [90033], TRANSIENT, "transient"),
])
def test_aadsts_codes(status, codes, kind, code):
    failure = classify(TENANT_TOKEN, status=status, error={"error": "invalid_request", "error_codes": codes,
                                                            "error_description": f"AADSTS{codes[0]}: ..."})
    assert (failure.kind, failure.code) == (kind, code)


@pytest.mark.parametrize("status, body, kind, code", [
    (403, {"error": {"code": "AuthorizationFailed", "message": "no role"}}, PERMANENT, "AuthorizationFailed"),
    (404, {}, PERMANENT, "HTTP404"),
    (429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, TRANSIENT, "transient"),
    (503, {}, TRANSIENT, "transient"),
])
def test_arm_answers(status, body, kind, code):
    failure = classify(ARM, status=status, error=body, retry_after=11)
    assert (failure.kind, failure.code) == (kind, code)
    assert failure.retry_after == (11 if kind == TRANSIENT else None)


def test_a_callers_own_endpoint_name_is_said_too():
    """classify serves callers beyond the chain's hops (a batch classifying what it caught, tenant discovery)."""
    assert classify("graph", exc=NoAnswer("it timed out")).message == "No answer from graph: it timed out."
    assert classify("graph", status=503).message == "graph answered HTTP 503."
    assert classify("batch", exc=OperationalError("the database went away")).kind == INFRASTRUCTURE
