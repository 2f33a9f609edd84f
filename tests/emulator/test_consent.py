"""Admin consent pages (v1 and v2): unregistered redirect URIs refused without a redirect, Accept creates the
service principal and redirects with Microsoft's parameters, Cancel redirects with access_denied — also in a browser."""
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from emulator import world as demo

CALLBACK = "http://127.0.0.1:8000/consent/callback/"


def _decide(emulator_http, emulator, tenant, action, version="v2", signin=None):
    page = emulator_http.get(f"{emulator.base_url}/{tenant}/{'v2.0/' if version == 'v2' else ''}adminconsent",
                             params={"client_id": demo.APP_ID, "redirect_uri": CALLBACK, "state": "s-123",
                                     **({"scope": "https://management.azure.com/.default"} if version == "v2" else {})})
    assert page.status_code == 200 and "Contoso MSSP Keyless Access" in page.text
    response = emulator_http.post(
        f"{emulator.base_url}/{tenant}/adminconsent/decision", allow_redirects=False,
        data={"client_id": demo.APP_ID, "redirect_uri": CALLBACK, "state": "s-123", "version": version,
              "scope": "https://management.azure.com/.default", "action": action,
              "signin_tenant": signin or tenant})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_v2_accept_creates_the_service_principal(emulator_http, emulator):
    assert emulator.world.service_principal(demo.NORTHWIND, demo.APP_ID) is None
    params = _decide(emulator_http, emulator, "northwind.example", "accept")
    assert params == {"admin_consent": "True", "tenant": demo.NORTHWIND, "state": "s-123",
                      "scope": "https://management.azure.com/.default"}
    assert emulator.world.service_principal(demo.NORTHWIND, demo.APP_ID) is not None


def test_v1_accept_has_no_scope_and_cancel_is_access_denied(emulator_http, emulator):
    assert "scope" not in _decide(emulator_http, emulator, demo.WOODGROVE, "accept", version="v1")
    declined = _decide(emulator_http, emulator, demo.NORTHWIND, "cancel")
    assert declined["error"] == "access_denied" and declined["error_description"].startswith("AADSTS65004")
    assert declined["state"] == "s-123" and "tenant" not in declined


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(emulator_http, emulator):
    response = emulator_http.get(f"{emulator.base_url}/{demo.NORTHWIND}/v2.0/adminconsent", allow_redirects=False,
                                 params={"client_id": demo.APP_ID, "redirect_uri": "https://evil.example/cb",
                                         "state": "x", "scope": "https://management.azure.com/.default"})
    assert response.status_code == 400 and "AADSTS50011" in response.text and "Location" not in response.headers


def test_v2_needs_a_scope_and_refuses_common(emulator_http, emulator):
    base = {"client_id": demo.APP_ID, "redirect_uri": CALLBACK, "state": "x"}
    assert "AADSTS90014" in emulator_http.get(f"{emulator.base_url}/{demo.NORTHWIND}/v2.0/adminconsent",
                                              params=base).text
    assert "AADSTS90130" in emulator_http.get(f"{emulator.base_url}/common/v2.0/adminconsent",
                                              params={**base, "scope": "x/.default"}).text


@pytest.fixture
def callback_server():
    """A plain local page standing in for the portal's callback; it records the query strings it receives."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/consent/callback/"):  # not the browser's favicon request
                received.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p id='landed'>landed</p>")

        def log_message(self, *args):
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/consent/callback/", received
    server.shutdown()


@pytest.mark.browser
def test_consent_in_a_real_browser(emulator, callback_server):
    from playwright.sync_api import sync_playwright

    callback, received = callback_server
    emulator.control.add_redirect_uris(app_id=demo.APP_ID, uris=[callback])
    shots = Path("var/screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    url = (f"{emulator.base_url}/{demo.NORTHWIND}/v2.0/adminconsent?client_id={demo.APP_ID}"
           f"&redirect_uri={callback}&state=browser-state&scope=https://management.azure.com/.default")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.goto(url)
        assert page.inner_text("#app-name") == "Contoso MSSP Keyless Access"
        page.screenshot(path=str(shots / "emulator-consent.png"))
        page.click("#accept")
        page.wait_for_selector("#landed")
        page.goto(url.replace("browser-state", "browser-cancel"))
        page.click("#cancel")
        page.wait_for_selector("#landed")
        browser.close()
    accepted = parse_qs(urlsplit(received[0]).query)
    cancelled = parse_qs(urlsplit(received[1]).query)
    assert accepted["admin_consent"] == ["True"] and accepted["tenant"] == [demo.NORTHWIND]
    assert accepted["state"] == ["browser-state"]
    assert cancelled["error"] == ["access_denied"] and cancelled["state"] == ["browser-cancel"]
    assert emulator.world.service_principal(demo.NORTHWIND, demo.APP_ID) is not None
