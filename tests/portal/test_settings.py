"""Settings come from the environment: no secret outside debug means no start; production settings pass --deploy."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_refuses_to_start_without_secret_outside_debug():
    result = _run(["check"], DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_uses_a_development_key():
    result = _run(["check"], DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_variables():
    result = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x7#Kq!v2R9pLm$Zt4Wb8Nc1Hd6Fg3Js0Ye5Ua-Xo*Ti&Er^Wq@Pz",
        ALLOWED_HOSTS="portal.example.com",
        REDIS_CACHE_URL="redis://127.0.0.1:6379/1",  # only read by the check, never connected to
        AUDIT_KEY="k3Vq9-audit-key-for-the-deploy-check-0123456789",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
