"""What a person does, in Debian's Chromium: "Sign in with Microsoft", pick an account on Microsoft's (the
emulator's) page, land on the role's home page; a user without a role is refused; a role removed in the directory is
gone at the next sign-in. Screenshots go to var/screenshots/."""
import pytest

from tests.fixtures.browser import SHOTS, chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(live_server, sso, settings):
    settings.ENTRA_SIGNIN_REDIRECT_URI = f"{live_server.url}/signin/callback/"
    sso.control.add_redirect_uris(app_id=sso.app_id, uris=[settings.ENTRA_SIGNIN_REDIRECT_URI])
    return live_server.url


@pytest.fixture
def browser(portal):
    with chromium() as browser:
        yield browser


def _sign_in(browser, portal, upn, shot=None):
    page = browser.new_context(ignore_https_errors=True).new_page()  # a fresh browser profile each time
    page.goto(f"{portal}/login/")
    page.click("#signin-microsoft")
    page.wait_for_selector("#accounts")
    if shot:
        page.screenshot(path=str(SHOTS / f"signin-{shot}-microsoft.png"), full_page=True)
    page.click(f"button[data-upn='{upn}@contoso-mssp.example']")
    page.wait_for_load_state()
    if shot:
        page.screenshot(path=str(SHOTS / f"signin-{shot}-landed.png"), full_page=True)
    return page


@pytest.mark.parametrize(("upn", "role", "home"), [
    ("adele", "admin", "/dashboard/"), ("omar", "operator", "/dashboard/"), ("vera", "viewer", "/dashboard/"),
    ("audrey", "auditor", "/audit/")])
def test_each_role_signs_in_with_microsoft(browser, portal, upn, role, home):
    page = _sign_in(browser, portal, upn, shot=role)
    assert page.url == f"{portal}{home}"
    assert f"{upn}@contoso-mssp.example · {role}" in page.inner_text("header")


def test_a_user_without_a_role_is_refused(browser, portal):
    page = _sign_in(browser, portal, "nestor", shot="no-role")
    assert page.url.startswith(f"{portal}/signin/callback/")
    assert page.inner_text("#refusal-title") == "Your account has no role in this portal"
    assert page.locator("text=Sign out").count() == 0


def test_a_role_removed_in_the_directory_is_gone_at_the_next_sign_in(browser, portal, sso):
    page = _sign_in(browser, portal, "omar")
    assert page.url == f"{portal}/dashboard/"
    sso.control.set_app_roles(user="omar@contoso-mssp.example", app_id=sso.app_id, roles=[])
    again = _sign_in(browser, portal, "omar", shot="role-removed")
    assert again.inner_text("#refusal-title") == "Your account has no role in this portal"
    page.goto(f"{portal}/dashboard/")  # the first browser's session: its roles are gone with the directory's
    assert "You don't have access to this page" in page.content()
