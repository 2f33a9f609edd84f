"""Probes for orchestrators: `/healthz` (the process answers; touches nothing) and `/readyz` (the database and the
Celery broker are reachable; 503 naming the one that is not).

Answered by a middleware placed first, before SecurityMiddleware and host validation: a probe comes over plain HTTP
from inside the container or the orchestrator, with whatever Host header it likes, and must not be redirected to
HTTPS nor refused by ALLOWED_HOSTS. The answers say only "ok" or "unreachable"; the reason goes to the log."""
import logging
import os
from pathlib import Path

import redis
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from kombu import Connection

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 3


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                                      socket_timeout=PROBE_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise OSError(f"broker folder {folder} is missing or not writable")
    else:
        with Connection(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1)


CHECKS = {"database": _database, "broker": _broker}


def healthz(request):
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


def readiness() -> dict[str, str]:
    """{"status": "ok"|"unavailable", "database": "ok"|"unreachable", "broker": ...}"""
    report = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure means "not ready"; the probe must answer, never crash
            logger.warning("readyz: %s unreachable: %s: %s", name, type(error).__name__, error)
            report[name] = "unreachable"
        else:
            report[name] = "ok"
    ready = all(value == "ok" for value in report.values())
    return {"status": "ok" if ready else "unavailable", **report}


def readyz(request):
    report = readiness()
    response = JsonResponse(report, status=200 if report["status"] == "ok" else 503)
    add_never_cache_headers(response)
    return response


PROBES = {"/healthz": healthz, "/healthz/": healthz, "/readyz": readyz, "/readyz/": readyz}


class HealthProbeMiddleware:
    """First in MIDDLEWARE: answers the probes' GET/HEAD before anything checks the host or the scheme."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in {"GET", "HEAD"}:
            return probe(request)
        return self.get_response(request)
