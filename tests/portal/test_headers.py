"""Headers and sessions (finding 10): a strict CSP that every page satisfies (no inline script, style or handler
anywhere), Permissions-Policy, no-store on staff pages, an idle session timeout, X-Forwarded-Proto trusted only when
configured, a random per-install key in debug mode; and (finding 9) `check --deploy` refusing a per-process cache."""
import os
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),
    "<style> block": re.compile(r"<style[\s>]", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "on* handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"(?:href|src|action)\s*=\s*[\"']?\s*javascript:", re.I),
}


def _inline_code(html: str) -> list[str]:
    # json_script's <script type="application/json"> is data, not code: allowed by CSP (never executed).
    html = re.sub(r'<script[^>]*type="application/json"[^>]*>.*?</script>', "", html, flags=re.S | re.I)
    return [f"{name}: {match.group(0)[:80]}" for name, pattern in INLINE.items() for match in pattern.finditer(html)]


def _assert_strict_csp(response):
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", policy
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_templates_hold_no_inline_script_style_or_handler():
    found = {}
    for path in (ROOT / "templates").rglob("*.html"):
        problems = _inline_code(path.read_text())
        if problems:
            found[str(path.relative_to(ROOT))] = problems
    assert found == {}


def test_every_staff_page_has_a_strict_csp_no_inline_code_and_no_store(pages_world, admin_client_portal):
    for url in pages_world.staff_pages:
        response = admin_client_portal.get(url)
        assert response.status_code == 200, url
        _assert_strict_csp(response)
        assert "no-store" in response["Cache-Control"], url
        assert _inline_code(response.content.decode()) == [], url
    dashboard = admin_client_portal.get(reverse("console:dashboard")).content.decode()
    assert 'id="chart-hours-data"' in dashboard and "portal/dashboard.js" in dashboard  # the charts are drawn
    issued = admin_client_portal.post(reverse("onboarding:consent-link-issue", args=[pages_world.tenant.pk]))
    assert issued.status_code == 200 and "portal/copy.js" in issued.content.decode()
    assert _inline_code(issued.content.decode()) == []
    _assert_strict_csp(issued)


def test_public_pages_have_a_strict_csp_and_no_inline_code(pages_world):
    client = Client()
    for url, status in [(reverse("portal:login"), 200), (reverse("onboarding:consent-callback"), 400),
                        (pages_world.progress, 200), ("/no-such-page/", 404)]:
        response = client.get(url)
        assert response.status_code == status, url
        _assert_strict_csp(response)
        assert _inline_code(response.content.decode()) == [], url
    assert 'name="htmx-config"' in client.get(pages_world.progress).content.decode()


def test_brand_logo_origin_is_allowed_for_images(settings, db):
    settings.PORTAL_BRAND_LOGO_URL = "https://cdn.example.com/logo.png"
    response = Client().get(reverse("portal:login"))
    assert "img-src 'self' data: https://cdn.example.com;" in response["Content-Security-Policy"]


# --- sessions ------------------------------------------------------------------------------------------------
def _signed_in_client(make_staff) -> Client:
    make_staff("viewer", "vera")
    client = Client()
    assert client.post(reverse("portal:login"), {"username": "vera", "password": PASSWORD}).status_code == 302
    return client


def test_session_lasts_eight_idle_hours_by_default(make_staff):
    client = _signed_in_client(make_staff)
    expires = Session.objects.get().expire_date
    assert timedelta(hours=7, minutes=59) < expires - timezone.now() <= timedelta(hours=8)
    assert client.cookies["sessionid"]["max-age"] == 8 * 3600


def test_an_idle_session_ends_and_an_active_one_slides(make_staff):
    client = _signed_in_client(make_staff)
    dashboard = reverse("console:dashboard")
    # Seven hours and 59 minutes idle: still signed in, and the request pushes the expiry 8 hours ahead again.
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get(dashboard).status_code == 200
    assert Session.objects.get().expire_date - timezone.now() > timedelta(hours=7, minutes=59)
    # More than 8 hours idle: signed out.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(dashboard)
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]


# --- settings read in a process of their own ---------------------------------------------------------------
def _settings_process(code: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_VAR_DIR"))}
    return subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                           + code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env})


def test_x_forwarded_proto_is_not_trusted_by_default(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    response = client.get(reverse("portal:login"), HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301 and response["Location"].startswith("https://")


def test_x_forwarded_proto_is_trusted_when_a_proxy_is_declared():
    off = _settings_process("print(settings.SECURE_PROXY_SSL_HEADER)", DJANGO_DEBUG="1")
    on = _settings_process("print(settings.SECURE_PROXY_SSL_HEADER)", DJANGO_DEBUG="1",
                           DJANGO_TRUST_X_FORWARDED_PROTO="1")
    assert off.stdout.strip() == "None", off.stderr
    assert on.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", on.stderr


def test_debug_mode_makes_a_random_secret_key_per_install(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    keys = [_settings_process("print(settings.SECRET_KEY)", DJANGO_DEBUG="1", PORTAL_VAR_DIR=str(folder))
            for folder in (first, first, second)]
    assert all(result.returncode == 0 for result in keys), [result.stderr for result in keys]
    one, again, two = (result.stdout.strip() for result in keys)
    assert one == again  # kept: sessions and signed links survive a restart
    assert one != two and len(one) >= 50
    assert (first / "secret_key").read_text().strip() == one
    assert stat.S_IMODE((first / "secret_key").stat().st_mode) == 0o600
    assert "insecure" not in one


@pytest.mark.parametrize("cache_url, refused", [("", True), ("redis://127.0.0.1:6379/1", False)])
def test_check_deploy_refuses_a_per_process_cache_in_production(tmp_path, cache_url, refused):
    env = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 60, "AUDIT_KEY": "a" * 64,
           "ALLOWED_HOSTS": "portal.example.com", "PORTAL_VAR_DIR": str(tmp_path), "REDIS_CACHE_URL": cache_url}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_CACHE_URL", "PORTAL_VAR_DIR"))}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**base, **env})
    assert ("portal.E001" in result.stderr) is refused, result.stdout + result.stderr
    assert (result.returncode != 0) is refused
