"""/healthz answers without touching the database; /readyz reports the database and the broker, 503 naming the one
that is unreachable; both answer plain HTTP with any Host header (probes come from inside the container)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import worker_env

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: nothing listens there


def test_healthz_answers_without_the_database():
    # No `db` fixture: pytest-django refuses any database access in this test.
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_database_and_broker():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}


def test_readyz_names_an_unreachable_database(tmp_path):
    # Its own process: the test database cannot be made unreachable under a running test.
    env = {**os.environ, "DJANGO_DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/missing-folder/portal.sqlite3"}
    script = ("import django, json; django.setup(); from django.test import Client; r = Client().get('/readyz'); "
              "print(json.dumps([r.status_code, r.json()]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"})
    assert result.returncode == 0, result.stderr[-3000:]
    status, report = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503 and report["database"] == "unreachable" and report["status"] == "unavailable"


@pytest.mark.django_db
def test_probes_answer_plain_http_with_any_host_in_production_settings(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    client = Client()  # made after the settings change: its handler reads them
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    # Everything else still goes through the host check and the HTTPS redirect.
    assert client.get("/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400
    assert client.get("/login/", HTTP_HOST="portal.example.com").status_code == 301


@pytest.mark.django_db
def test_readyz_command_exits_non_zero_when_the_broker_is_unreachable():
    base = worker_env()  # this test's database and broker
    ok = subprocess.run([sys.executable, "manage.py", "readyz"], cwd=ROOT, env=base, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["broker"] == "ok"
    down = subprocess.run([sys.executable, "manage.py", "readyz"], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "CELERY_BROKER_URL": f"redis://127.0.0.1:{_closed_port()}/0"}, timeout=120)
    assert down.returncode == 1 and "not ready: broker" in down.stderr
