"""The sign-in settings refuse to start half-configured or with unknown values."""
from tests.portal.test_settings import _run


def test_password_signin_is_on_or_break_glass():
    result = _run(["check"], DJANGO_DEBUG="1", PASSWORD_SIGNIN="sometimes")
    assert result.returncode != 0 and "PASSWORD_SIGNIN must be 'on' or 'break-glass'" in result.stderr
    assert _run(["check"], DJANGO_DEBUG="1", PASSWORD_SIGNIN="break-glass").returncode == 0


def test_sign_in_with_microsoft_needs_its_tenant_and_the_web_identity():
    result = _run(["check"], DJANGO_DEBUG="1", ENTRA_SIGNIN_CLIENT_ID="8b1c7d2e-4f3a-4b6c-9d8e-0a1b2c3d4e5f")
    assert result.returncode != 0 and "ENTRA_SIGNIN_IDENTITY_CLIENT_ID" in result.stderr
    assert _run(["check"], DJANGO_DEBUG="1", ENTRA_SIGNIN_CLOUD="mars").returncode != 0
