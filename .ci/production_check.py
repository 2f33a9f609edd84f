"""CI's production stage: build as the Dockerfile builds, start as docker-compose starts, and check through real HTTP
and Chromium that production mode serves its pages.

The commands come from the Dockerfile and docker-compose.yml themselves (no Docker engine needed): the Dockerfile's
RUN lines after `COPY . .` (collectstatic), compose's `migrate` command, the Dockerfile's CMD (gunicorn) with only its
bind address changed. `pip install .` is the virtualenv this runs in, made from the same pyproject.toml. Then, with
DJANGO_DEBUG=0 on PostgreSQL and Redis: /healthz, /readyz, /login/, the consent callback's refusal page (400), the
404 page, every hashed static file the pages use (far-future Cache-Control) and, in Chromium, the login page and
every staff page that needs no object, signed in as an admin, with no console error (CSP violations included). Any
500, any console error, or a consent `state` in the access log fails the stage. Gunicorn is stopped and the database
dropped whatever happens.

Environment overrides (for a developer's own resources): PRODUCTION_CHECK_DATABASE (default ci_production, created
and dropped on postgresql://postgres@127.0.0.1:5432), PRODUCTION_CHECK_BROKER_URL (redis://127.0.0.1:6379/0),
PRODUCTION_CHECK_CACHE_URL (redis://127.0.0.1:6379/1), PRODUCTION_CHECK_PORT (default: a free port).
"""
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
ONE_YEAR = 365 * 24 * 3600
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Every staff page that needs no object (the database holds only the admin): each must render, with its scripts, under
# the CSP and DEBUG=0.
STAFF_PAGES = ["/dashboard/", "/tenants/", "/tenants/picker/?q=x", "/customers/", "/customers/new/", "/customers/import/",
               "/identities/", "/identities/apps/new/", "/identities/identities/new/", "/access-profiles/",
               "/access-profiles/new/", "/token-tests/", "/sweeps/", "/emergency-stop/", "/emergency-stop/engage/",
               "/alerts/", "/alerts/settings/", "/exports/", "/audit/", "/audit/verify/", "/login-locks/"]
STATE_MARKER = "state-must-not-be-logged-" + secrets.token_hex(8)


# --- the build and run commands, read from the Dockerfile and docker-compose.yml ----------------------------------
def dockerfile(path: Path = ROOT / "Dockerfile") -> dict:
    """{"env": {...}, "run_after_copy": ["shell command", ...], "cmd": [...]} of a simple Dockerfile."""
    env, run_after_copy, cmd, copied = {}, [], None, False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
        elif instruction == "COPY" and rest.split() == [".", "."]:
            copied = True
        elif instruction == "RUN" and copied:
            run_after_copy.append(rest)
        elif instruction == "CMD":
            cmd = json.loads(rest)
    return {"env": env, "run_after_copy": run_after_copy, "cmd": cmd}


def compose_command(service: str, path: Path = ROOT / "docker-compose.yml") -> list[str]:
    import yaml

    command = yaml.safe_load(path.read_text())["services"][service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def with_bind(cmd: list[str], address: str) -> list[str]:
    cmd = list(cmd)
    cmd[cmd.index("--bind") + 1] = address
    return cmd


# --- helpers ---------------------------------------------------------------------------------------------------
class Failures(list):
    def check(self, condition: bool, message: str) -> bool:
        print(("  ok    " if condition else "  FAIL  ") + message, flush=True)
        if not condition:
            self.append(message)
        return condition


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http_get(url: str) -> tuple[int, dict, str]:
    try:
        with _opener.open(url, timeout=20) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command, env, shell=False):
    print(f"$ {command if shell else shlex.join(command)}", flush=True)
    subprocess.run(command, cwd=ROOT, env=env, shell=shell, check=True)


def database(name: str, *, create: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def production_env(var_dir: Path, db_name: str, password: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "REDIS_", "AUDIT_", "PORTAL_", "ENTRA_"))}
    venv_bin = str(Path(sys.executable).parent)
    return {
        **base,
        **dockerfile()["env"],
        "PATH": venv_bin + os.pathsep + base.get("PATH", ""),
        "PORTAL_VAR_DIR": str(var_dir),  # STATIC_ROOT (var/staticfiles) and any file the portal keeps
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_KEY": secrets.token_hex(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"{PG_SERVER}/{db_name}",
        "CELERY_BROKER_URL": os.environ.get("PRODUCTION_CHECK_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_CACHE_URL": os.environ.get("PRODUCTION_CHECK_CACHE_URL", "redis://127.0.0.1:6379/1"),
        # Plain HTTP on 127.0.0.1: no TLS proxy in front, so no redirect to HTTPS and no Secure-only cookies.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "PRODUCTION_CHECK_PASSWORD": password,
    }


# --- the checks ------------------------------------------------------------------------------------------------
def check_http(base: str, failures: Failures) -> None:
    status, _, body = http_get(f"{base}/healthz")
    failures.check(status == 200 and json.loads(body)["status"] == "ok", f"/healthz answers 200 ({status})")
    status, _, body = http_get(f"{base}/readyz")
    failures.check(status == 200, f"/readyz answers 200: database and broker reachable ({status} {body.strip()})")

    status, headers, body = http_get(f"{base}/login/")
    failures.check(status == 200 and "Staff sign-in" in body, f"/login/ answers 200 ({status})")
    csp = headers.get("Content-Security-Policy", "")
    failures.check("script-src 'self'" in csp and "unsafe-inline" not in csp, f"/login/ has a strict CSP ({csp!r})")
    assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', body)))
    failures.check(len(assets) >= 3, f"/login/ links its stylesheets and scripts ({len(assets)})")
    for asset in assets:
        status, headers, _ = http_get(base + asset)
        cache_control = headers.get("Cache-Control", "")
        max_age = int((re.search(r"max-age=(\d+)", cache_control) or [0, 0])[1])
        failures.check(status == 200 and re.search(r"\.[0-9a-f]{12}\.\w+$", asset) is not None
                       and max_age >= ONE_YEAR and "immutable" in cache_control,
                       f"{asset}: {status}, hashed, far-future caching ({cache_control!r})")

    status, _, body = http_get(f"{base}/consent/callback/")
    failures.check(status == 400 and "recognise this link" in body, f"/consent/callback/ refusal page: 400 ({status})")
    status, _, _ = http_get(f"{base}/consent/callback/?admin_consent=True&tenant=x&state={STATE_MARKER}")
    failures.check(status == 400, f"/consent/callback/ with an unknown state: 400 ({status})")
    status, _, body = http_get(f"{base}/no-such-page/")
    failures.check(status == 404 and "Page not found" in body, f"the 404 page ({status})")
    status, headers, _ = http_get(f"{base}/")
    failures.check(status == 302, f"/ redirects a visitor ({status} to {headers.get('Location')})")


def check_browser(base: str, password: str, failures: Failures) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context().new_page()
            errors = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))

            def visit(path):
                errors.clear()
                response = page.goto(base + path, wait_until="networkidle")
                failures.check(response is not None and response.status == 200 and not errors,
                               f"Chromium {path}: {response.status if response else None}, console errors: {errors}")

            visit("/login/")
            page.fill("input[name=username]", "ci-admin")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/dashboard/")
            for path in STAFF_PAGES:
                visit(path)
        finally:
            browser.close()


def check_log(log: Path, failures: Failures) -> None:
    text = log.read_text(errors="replace")
    failures.check(re.search(r'" 5\d\d ', text) is None and "Traceback" not in text,
                   "no 5xx answer and no traceback in gunicorn's log")
    failures.check(STATE_MARKER not in text, "the consent state is not in the access log")
    failures.check("/consent/callback/ " in text, "the access log records the consent callback's path")


# --- the stage -------------------------------------------------------------------------------------------------
def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text(errors='replace')}")
        try:
            if http_get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer /healthz in 90 s:\n{log.read_text(errors='replace')}")


def main() -> int:
    # Longer than our usual functions on purpose: the stage read top to bottom (build, migrate, serve, check, clean up)
    # inside the one try/finally that must stop gunicorn and drop the database whatever happens.
    # A cancelled CI job (SIGTERM, SIGHUP) still runs the clean-up below: gunicorn stopped, the database dropped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: sys.exit(128 + number))
    db_name = os.environ.get("PRODUCTION_CHECK_DATABASE", "ci_production")
    port = int(os.environ.get("PRODUCTION_CHECK_PORT") or free_port())
    base = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(16)
    failures = Failures()
    gunicorn = None
    with tempfile.TemporaryDirectory(prefix="production-check-") as tmp:
        var_dir, log = Path(tmp) / "var", Path(tmp) / "gunicorn.log"
        var_dir.mkdir()
        env = production_env(var_dir, db_name, password)
        build = dockerfile()
        try:
            database(db_name, create=True)
            for command in build["run_after_copy"]:
                run(command, env, shell=True)
            run(compose_command("migrate"), env)
            run(["python", "manage.py", "create_staff", "ci-admin", "--role", "admin",
                 "--password-env", "PRODUCTION_CHECK_PASSWORD"], env)
            cmd = with_bind(build["cmd"], f"127.0.0.1:{port}")
            print(f"$ {shlex.join(cmd)}  (log: {log})", flush=True)
            with log.open("w") as out:
                gunicorn = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
            wait_until_up(base, gunicorn, log)
            check_http(base, failures)
            check_browser(base, password, failures)
            stop(gunicorn)  # flushes the access log
            check_log(log, failures)
        except Exception as error:  # a step that crashed fails the stage, with gunicorn's log for the diagnosis
            failures.append(f"{type(error).__name__}: {error}")
            if log.exists():
                print(log.read_text(errors="replace")[-5000:], file=sys.stderr)
        finally:
            if gunicorn is not None:
                stop(gunicorn)
            database(db_name, create=False)
    if failures:
        print("production check FAILED:\n- " + "\n- ".join(failures), file=sys.stderr)
        return 1
    print("production check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
