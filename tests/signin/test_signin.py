"""Sign-in with Entra ID end to end against the emulator (real MSAL, real HTTPS, the web identity's federated
credential): each role lands on its home page, roles follow the directory, and every refusal is a clear page and an
audit event."""
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from emulator.world import FABRIKAM, MI_CLIENT_ID
from portal.models import AuditEvent
from signin.models import DirectoryIdentity
from tests.signin.conftest import choose_account, oid_of, start, state_in


def _refusal(reason):
    event = AuditEvent.objects.filter(action="auth.sso_refused").first()
    assert event is not None, "no refusal audited"
    assert event.detail["reason"] == reason
    return event


@pytest.mark.parametrize(("upn", "role", "home"), [
    ("adele", "admin", "console:dashboard"), ("omar", "operator", "console:dashboard"),
    ("vera", "viewer", "console:dashboard"), ("audrey", "auditor", "portal:audit-list")])
def test_each_role_signs_in_and_lands_on_its_home(sign_in, sso, upn, role, home):
    client = Client()
    response = sign_in(client, upn)
    assert response.status_code == 302 and response["Location"] == reverse("console:home")
    landing = client.get(response["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse(home)
    assert landing.status_code == 200
    user = get_user_model().objects.get(username=f"{upn}@contoso-mssp.example")
    assert sorted(user.groups.values_list("name", flat=True)) == [role]
    assert not user.has_usable_password()
    identity = DirectoryIdentity.objects.get(user=user)
    assert str(identity.object_id) == oid_of(sso.emulator, upn) and str(identity.tenant_id) == sso.tenant
    assert identity.display_name and identity.roles == [role]
    login = AuditEvent.objects.get(action="auth.sso_login")
    assert login.detail["actor_directory"] == {"oid": oid_of(sso.emulator, upn), "tid": sso.tenant,
                                               "upn": f"{upn}@contoso-mssp.example"}
    assert login.detail["roles"] == [role] and "mfa" in login.detail["amr"]
    created = AuditEvent.objects.get(action="staff.created")
    assert created.detail["source"] == "entra" and created.detail["actor_directory"]["upn"] == user.username


def test_staff_actions_are_audited_with_the_directory_identity(sign_in, sso):
    client = Client()
    sign_in(client, "adele")
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.detail["actor_directory"]["oid"] == oid_of(sso.emulator, "adele")
    assert logout.actor_label == "adele@contoso-mssp.example"


def test_a_user_without_a_role_is_refused(sign_in):
    response = sign_in(Client(), "nestor")
    assert response.status_code == 403
    assert b"Your account has no role in this portal" in response.content
    event = _refusal("no_role")
    assert event.detail["identity"]["upn"] == "nestor@contoso-mssp.example" and event.detail["identity"]["verified"]
    assert not get_user_model().objects.filter(username__startswith="nestor").exists()


def test_roles_are_re_read_at_every_sign_in(sign_in, sso):
    sign_in(Client(), "omar")
    user = get_user_model().objects.get(username="omar@contoso-mssp.example")
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    sso.control.set_app_roles(user="omar@contoso-mssp.example", app_id=sso.app_id, roles=["Portal.Viewer"])
    assert sign_in(Client(), "omar").status_code == 302
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    changed = AuditEvent.objects.get(action="staff.roles_changed")
    assert changed.detail["before"] == ["operator"] and changed.detail["after"] == ["viewer"]


def test_a_role_removed_in_the_directory_is_lost_at_the_next_sign_in(sign_in, sso):
    first = Client()
    sign_in(first, "omar")
    assert first.get(reverse("onboarding:customer-create")).status_code == 200
    sso.control.set_app_roles(user="omar@contoso-mssp.example", app_id=sso.app_id, roles=[])
    response = sign_in(Client(), "omar")
    assert response.status_code == 403 and b"no role" in response.content
    user = get_user_model().objects.get(username="omar@contoso-mssp.example")
    assert not user.groups.exists()
    assert first.get(reverse("onboarding:customer-create")).status_code == 403  # roles are read per request
    assert AuditEvent.objects.get(action="staff.roles_changed").detail["after"] == []
    _refusal("no_role")


def test_group_ids_as_the_alternative_mapping(sign_in, settings):
    settings.ENTRA_SIGNIN_ROLE_MAP = ""
    settings.ENTRA_SIGNIN_GROUP_MAP = "C0000000-0000-4000-8000-0000000000AD=admin"
    assert sign_in(Client(), "adele").status_code == 302
    assert list(get_user_model().objects.get(username__startswith="adele").groups.values_list("name", flat=True)) \
        == ["admin"]
    assert sign_in(Client(), "omar").status_code == 403  # an app role alone maps to nothing now


def test_next_is_kept_and_only_on_this_site(sign_in):
    assert sign_in(Client(), "omar", "/customers/")["Location"] == "/customers/"
    assert sign_in(Client(), "omar", "https://evil.example/")["Location"] == reverse("console:home")
    # The one check of portal.http: a relative path of fullwidth slashes is nothing we sent (Django's check alone
    # accepts it).
    assert sign_in(Client(), "omar", "\uff0f\uff0fevil.example")["Location"] == reverse("console:home")


# --- refusals --------------------------------------------------------------------------------------------------
def test_wrong_state(sso, emulator_http):
    client = Client()
    params = choose_account(emulator_http, sso.emulator, start(client), "adele")
    response = client.get("/signin/callback/", {**params, "state": "forged-state"})
    assert response.status_code == 400 and b"This sign-in didn&#x27;t start here" in response.content
    _refusal("state")
    assert "_auth_user_id" not in client.session


def test_a_completed_sign_in_cannot_be_replayed(sso, emulator_http):
    client = Client()
    params = choose_account(emulator_http, sso.emulator, start(client), "adele")
    assert client.get("/signin/callback/", params).status_code == 302
    again = Client()
    assert again.get("/signin/callback/", params).status_code == 400  # another browser: no such flow
    _refusal("state")


def test_replayed_code_is_refused_by_entra(sso, emulator_http):
    client = Client()
    params = choose_account(emulator_http, sso.emulator, start(client), "adele")
    assert client.get("/signin/callback/", params).status_code == 302
    client.post(reverse("portal:logout"))
    state = state_in(start(client))
    response = client.get("/signin/callback/", {"code": params["code"], "state": state})
    assert response.status_code == 400 and b"already" in response.content
    assert _refusal("code_replayed").detail["code"] == "AADSTS54005"


def test_pkce_verifier_mismatch(sso, emulator_http):
    """A code obtained by another sign-in (an attacker's), injected into this browser's callback: PKCE refuses it."""
    victim, attacker = Client(), Client()
    victim_state = state_in(start(victim))
    stolen = choose_account(emulator_http, sso.emulator, start(attacker), "adele")
    response = victim.get("/signin/callback/", {"code": stolen["code"], "state": victim_state})
    assert response.status_code == 400 and b"PKCE" in response.content
    assert _refusal("pkce").detail["code"] == "AADSTS501481"
    assert "_auth_user_id" not in victim.session


@pytest.mark.parametrize(("spoil", "reason", "shown"), [
    ({"set": {"tid": FABRIKAM, "iss": f"https://login.microsoftonline.com/{FABRIKAM}/v2.0"}}, "tenant",
     b"another organisation"),
    ({"set": {"aud": "00000000-0000-4000-8000-00000000dead"}}, "audience", b"another application"),
    ({"exp_offset": -600}, "expired", b"has expired"),
    ({"sign_with": "oidc-1"}, "signature", b"signature"),
    ({"drop": ["nonce"]}, "nonce", b"nonce"),
    ({"set": {"iss": "https://sts.windows.net/6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01/"}}, "issuer", b"not issued by"),
])
def test_id_token_validation(sso, sign_in, spoil, reason, shown):
    sso.control.spoil_next_id_token(**spoil)
    client = Client()
    response = sign_in(client, "adele")
    assert response.status_code == 403, response.content
    assert shown in response.content
    event = _refusal(reason)
    assert event.detail["identity"].get("upn") == "adele@contoso-mssp.example" or reason == "nonce"
    assert "_auth_user_id" not in client.session
    assert not DirectoryIdentity.objects.exists()


def test_expiry_allows_the_configured_clock_skew(sso, sign_in):
    sso.control.spoil_next_id_token(exp_offset=-60)  # expired a minute ago: inside the 120 s skew
    assert sign_in(Client(), "adele").status_code == 302


def test_mfa_when_required(sso, sign_in, settings):
    settings.ENTRA_SIGNIN_REQUIRE_MFA = True
    response = sign_in(Client(), "pat")
    assert response.status_code == 403 and b"Multi-factor authentication is required" in response.content
    assert _refusal("mfa").detail["identity"]["verified"] is True
    assert sign_in(Client(), "adele").status_code == 302
    settings.ENTRA_SIGNIN_REQUIRE_MFA = False
    assert sign_in(Client(), "pat").status_code == 302


def test_cancel_on_microsofts_page(sso, emulator_http):
    client = Client()
    params = choose_account(emulator_http, sso.emulator, start(client), None)
    response = client.get("/signin/callback/", params)
    assert response.status_code == 403 and b"did not sign you in" in response.content
    assert _refusal("entra_error").detail["code"] == "AADSTS50126"


def test_the_web_identity_not_trusted_by_the_sign_in_app(sso, sign_in, settings):
    """The worker's identity has no federated credential on the sign-in app: the portal's configuration, not the
    user, is at fault (AADSTS70021)."""
    settings.ENTRA_SIGNIN_IDENTITY_CLIENT_ID = MI_CLIENT_ID
    response = sign_in(Client(), "adele")
    assert response.status_code == 503 and b"you did nothing wrong" in response.content
    assert _refusal("configuration").detail["code"] == "AADSTS70021"


def test_an_unknown_web_identity(sso, sign_in, settings):
    settings.ENTRA_SIGNIN_IDENTITY_CLIENT_ID = "99999999-9999-4999-8999-999999999999"
    response = sign_in(Client(), "adele")
    assert response.status_code == 503 and b"managed identity" in response.content
    assert _refusal("identity").detail["code"] == "IMDS:invalid_request"


def test_not_configured(settings, db):
    settings.ENTRA_SIGNIN_CLIENT_ID = ""
    assert Client().get("/signin/start/").status_code == 404
    assert b"Sign in with Microsoft" not in Client().get(reverse("portal:login")).content


def test_the_sign_in_page_offers_microsoft(sso):
    page = Client().get(reverse("portal:login") + "?next=/customers/").content.decode()
    assert 'id="signin-microsoft"' in page and "/signin/start/?next=/customers/" in page


# --- the session's maximum age ----------------------------------------------------------------------------------
def test_a_session_ends_at_its_maximum_age(sso, sign_in, settings):
    client = Client()
    sign_in(client, "vera")
    assert client.get(reverse("console:dashboard")).status_code == 200
    session = client.session
    session["signin_at"] = time.time() - settings.SIGNIN_SESSION_MAX_AGE_SECONDS - 1
    session.save()
    response = client.get(reverse("console:dashboard"))
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.get(action="auth.session_expired").detail["actor_directory"]["upn"].startswith("vera")
    htmx = Client()
    sign_in(htmx, "vera")
    session = htmx.session
    session["signin_at"] = 0
    session.save()
    response = htmx.get(reverse("console:dashboard"), headers={"HX-Request": "true"})
    assert response.status_code == 204 and reverse("portal:login") in response["HX-Redirect"]


def test_the_demo_signs_in_through_the_emulator(emulator):
    """manage.py demo sends demo_emulator_started; signin answers with the emulator's sign-in app and web identity."""
    from portal.signals import demo_emulator_started

    env = {}
    for _receiver, more in demo_emulator_started.send(sender=None, info=emulator.info):
        env.update(more or {})
    assert env == {"ENTRA_SIGNIN_CLIENT_ID": "8b1c7d2e-4f3a-4b6c-9d8e-0a1b2c3d4e5f",
                   "ENTRA_SIGNIN_TENANT_ID": "6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01",
                   "ENTRA_SIGNIN_IDENTITY_CLIENT_ID": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"}


def test_sign_in_attempts_are_rate_limited_per_address(sso, settings):
    settings.SIGNIN_RATE_LIMIT = 3
    client = Client()
    for _ in range(3):
        assert client.get("/signin/callback/", {"state": "x", "code": "y"}).status_code == 400
    response = client.get("/signin/callback/", {"state": "x", "code": "y"})
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60  # the rest of the minute
    assert client.get("/signin/start/").status_code == 429
    assert AuditEvent.objects.filter(action="auth.sso_refused").count() == 3
    assert AuditEvent.objects.filter(action="auth.sso_rate_limited").count() == 1


@pytest.mark.parametrize(("cloud", "host"), [("global", "login.microsoftonline.com"),
                                             ("usgov", "login.microsoftonline.us"),
                                             ("china", "login.chinacloudapi.cn")])
def test_national_clouds_authority_and_issuer(settings, cloud, host):
    from signin import oidc

    settings.ENTRA_BASE_URL = ""
    settings.ENTRA_SIGNIN_CLOUD = cloud
    settings.ENTRA_SIGNIN_TENANT_ID = "6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01"
    cfg = oidc.config()
    assert cfg.authority == f"https://{host}/6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01"
    assert cfg.issuer == f"https://{host}/6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01/v2.0"


def test_group_overage_is_explained(sso, sign_in, settings):
    settings.ENTRA_SIGNIN_ROLE_MAP = ""
    settings.ENTRA_SIGNIN_GROUP_MAP = "c0000000-0000-4000-8000-0000000000ad=admin"
    sso.control.spoil_next_id_token(drop=["groups"], set={"_claim_names": {"groups": "src1"}})
    response = sign_in(Client(), "adele")
    assert response.status_code == 403 and b"map app roles instead of groups" in response.content
