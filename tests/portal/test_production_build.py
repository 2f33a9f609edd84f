"""The production build: the Dockerfile's own collectstatic command, then DJANGO_DEBUG=0 serving the login page, the
404 page and hashed static files with far-future caching (whitenoise and the manifest). Before, collectstatic ran
in debug mode (no manifest: every page answered 500) and failed in production mode on Chart.js's missing map."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("production_check", ROOT / ".ci" / "production_check.py")
production_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(production_check)

# Runs in a DJANGO_DEBUG=0 process: Django's test client through the whole middleware stack (whitenoise included).
SERVE = r"""
import json, re, django
django.setup()
from django.test import Client
client, out = Client(), {}
login = client.get("/login/")
out["login"] = login.status_code
assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', login.content.decode())))
out["assets"] = {}
for asset in assets:
    response = client.get(asset)
    out["assets"][asset] = [response.status_code, response.get("Cache-Control", "")]
    if hasattr(response, "close"):
        response.close()
missing = client.get("/no-such-page/")
out["missing"] = [missing.status_code, "Page not found" in missing.content.decode()]
print(json.dumps(out))
"""


def _production_env(var_dir: Path) -> dict:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_", "AUDIT_", "PORTAL_VAR_DIR"))}
    return {**base, "PATH": str(Path(sys.executable).parent) + os.pathsep + base.get("PATH", ""),
            "PORTAL_VAR_DIR": str(var_dir), "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 60,
            "AUDIT_KEY": "a" * 64, "ALLOWED_HOSTS": "testserver", "DJANGO_SECURE_SSL_REDIRECT": "0"}


def test_every_vendored_source_map_reference_resolves():
    for path in (ROOT / "static").rglob("*"):
        if path.suffix in {".js", ".css"}:
            for reference in re.findall(r"sourceMappingURL=(\S+?)(?:\s*\*/)?\s*$", path.read_text(), re.M):
                assert (path.parent / reference).exists(), f"{path} refers to a missing {reference}"


def test_the_dockerfile_collects_static_files_in_production_mode():
    commands = production_check.dockerfile()["run_after_copy"]
    collect = [command for command in commands if "collectstatic" in command]
    assert len(collect) == 1 and "DJANGO_DEBUG=0" in collect[0], commands


def test_built_as_the_dockerfile_builds_production_serves_pages_and_hashed_assets(tmp_path):
    env = _production_env(tmp_path)
    for command in production_check.dockerfile()["run_after_copy"]:
        result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert (tmp_path / "staticfiles" / "staticfiles.json").exists()

    result = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE":
                            "portal.settings"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["login"] == 200
    assert out["missing"] == [404, True]
    assert len(out["assets"]) >= 3  # pico, portal.css, htmx (and the icon)
    assert any(re.search(r"/portal/favicon\.[0-9a-f]{12}\.svg$", asset) for asset in out["assets"]), out["assets"]
    for asset, (status, cache_control) in out["assets"].items():
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", asset), f"{asset} is not a hashed name"
        assert status == 200, asset
        max_age = int(re.search(r"max-age=(\d+)", cache_control)[1])
        assert max_age >= 365 * 24 * 3600 and "immutable" in cache_control, (asset, cache_control)
