"""AUDIT_KEY: required outside debug (no start without it, nor with a short one); a development install makes its own
random key under var/, readable by its owner only."""
import os
import stat
import subprocess
import sys
from pathlib import Path

from portal.env import install_secret

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x7#Kq!v2R9pLm$Zt4Wb8Nc1Hd6Fg3Js0Ye5Ua-Xo*Ti&Er^Wq@Pz"


def _check(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "AUDIT_"))}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_refuses_to_start_without_an_audit_key_outside_debug():
    result = _check(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=SECRET, ALLOWED_HOSTS="portal.example.com")
    assert result.returncode != 0 and "AUDIT_KEY is not set" in result.stderr
    short = _check(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=SECRET, ALLOWED_HOSTS="portal.example.com", AUDIT_KEY="short")
    assert short.returncode != 0 and "AUDIT_KEY is too short" in short.stderr


def test_a_development_install_makes_its_own_key_once(tmp_path):
    result = _check(DJANGO_DEBUG="1", PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "audit-key"
    key = key_file.read_text()
    assert len(key) >= 48 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _check(DJANGO_DEBUG="1", PORTAL_VAR_DIR=str(tmp_path)).returncode == 0
    assert key_file.read_text() == key  # kept, not remade
    assert install_secret(tmp_path / "another") != key  # random per install
