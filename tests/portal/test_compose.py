"""docker-compose.yml and the Dockerfile, read without an engine: the services exist, wait for each other through
healthchecks that use /readyz (or the same checks), the cache is shared, and the access log never carries a query
string (a consent callback's `state`)."""
import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("production_check", ROOT / ".ci" / "production_check.py")
production_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(production_check)


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_defines_the_stack_with_healthchecks():
    services = _compose()["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "beat"):
        test = services[name]["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, (name, test)
    assert any("/readyz" in part for part in services["web"]["healthcheck"]["test"])
    for name in ("worker", "beat"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "manage.py", "readyz"]


def test_compose_starts_the_portal_after_healthy_backing_services_and_migrations():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    # The migration step refuses a deployment that `check --deploy` finds wrong (a per-process cache, say).
    assert "check --deploy --fail-level ERROR" in " ".join(production_check.compose_command("migrate"))


def test_compose_sets_a_shared_cache_and_the_production_secrets():
    for name in ("web", "worker", "beat", "migrate"):
        environment = _compose()["services"][name]["environment"]
        assert environment["REDIS_CACHE_URL"].startswith("redis://"), name
        assert {"DJANGO_SECRET_KEY", "AUDIT_KEY", "DJANGO_TRUST_X_FORWARDED_PROTO"} <= set(environment), name


def test_access_log_format_has_no_query_string_and_is_the_same_in_compose_and_dockerfile():
    web = production_check.compose_command("web")
    cmd = production_check.dockerfile()["cmd"]
    assert web == cmd
    log_format = cmd[cmd.index("--access-logformat") + 1]
    assert "%(U)s" in log_format  # the path only
    for atom in ("%(r)s", "%(q)s", "%(f)s", "%({raw_uri}e)s"):  # request line, query string, Referer, raw URI
        assert atom not in log_format
    assert cmd[cmd.index("--access-logfile") + 1] == "-"
