"""The portal's sign-in with Entra ID pointed at the emulator's sign-in app, and helpers that play the browser."""
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest

from emulator.world import HOME, SIGNIN_APP_ID

CALLBACK = "http://127.0.0.1:8000/signin/callback/"  # registered on the demo world's sign-in app


@pytest.fixture
def sso(emulator, settings, db):
    from exchange import chain
    from exchange.demo import demo_environment
    from signin import oidc
    from signin.demo import demo_environment as signin_environment

    env = {**demo_environment(emulator.info), **signin_environment(info=emulator.info)}
    settings.ENTRA_BASE_URL, settings.ENTRA_CA_BUNDLE, settings.IMDS_URL = (
        env["ENTRA_BASE_URL"], env["ENTRA_CA_BUNDLE"], env["IMDS_URL"])
    settings.ENTRA_SIGNIN_CLIENT_ID = env["ENTRA_SIGNIN_CLIENT_ID"]
    settings.ENTRA_SIGNIN_TENANT_ID = env["ENTRA_SIGNIN_TENANT_ID"]
    settings.ENTRA_SIGNIN_IDENTITY_CLIENT_ID = env["ENTRA_SIGNIN_IDENTITY_CLIENT_ID"]
    settings.ENTRA_SIGNIN_REDIRECT_URI = CALLBACK
    chain.reset_clients()
    oidc.reset_clients()
    yield SimpleNamespace(emulator=emulator, control=emulator.control, app_id=SIGNIN_APP_ID, tenant=HOME)
    oidc.reset_clients()
    chain.reset_clients()


def oid_of(emulator, upn: str) -> str:
    return next(u["oid"] for u in emulator.world.data["users"] if u["upn"].startswith(upn + "@"))


def choose_account(emulator_http, emulator, auth_uri: str, upn: str | None) -> dict:
    """What the person does on Microsoft's (the emulator's) page: pick an account (None: Cancel). The callback's
    query parameters."""
    page = emulator_http.get(auth_uri)
    assert page.status_code == 200, page.text
    split = urlsplit(auth_uri)
    form = dict(parse_qsl(split.query))
    form["user"] = oid_of(emulator, upn) if upn else ""
    answer = emulator_http.post(f"{split.scheme}://{split.netloc}{split.path}/decision", data=form,
                                allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/signin/callback/"
    return dict(parse_qsl(location.query))


def start(client, next_url: str = "") -> str:
    response = client.get("/signin/start/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content
    return response["Location"]


def state_in(auth_uri: str) -> str:
    return dict(parse_qsl(urlsplit(auth_uri).query))["state"]


@pytest.fixture
def sign_in(sso, emulator_http):
    """sign_in(client, "adele") -> the callback's response (a whole sign-in through the emulator's page)."""

    def run(client, upn, next_url=""):
        params = choose_account(emulator_http, sso.emulator, start(client, next_url), upn)
        return client.get("/signin/callback/", params)

    return run
