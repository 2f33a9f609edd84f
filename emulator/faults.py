"""Injected trouble, per endpoint kind: latency (+jitter), a rate of 429/503, deterministic next-N failures; and the
request log that counts calls per kind and tenant. Both are applied by the server before a request reaches its
service."""
import random
import threading
import time
from collections import Counter

from emulator.protocol import Response, entra_error_body


class Faults:
    """Per endpoint kind: latency (+jitter), a rate of 429/503, and deterministic next-N failures. A kind may be
    scoped to one tenant as "kind:tenant" (e.g. "token:<home tenant id>", "discovery:<tenant>"): its settings apply
    to that tenant's requests only, over the kind's own."""

    def __init__(self, latency_ms=0, jitter_ms=0):
        self.lock = threading.Lock()
        self.default = {"latency_ms": latency_ms, "jitter_ms": jitter_ms}
        self.by_kind: dict[str, dict] = {}

    def configure(self, kinds: dict) -> None:
        with self.lock:
            for kind, spec in kinds.items():
                self.by_kind.setdefault(kind, {}).update(spec)

    def reset(self) -> None:
        with self.lock:
            self.by_kind.clear()

    def _settle(self, kind: str, tenant: str | None) -> tuple[dict, int | None]:
        """The spec in force for this request, and the status a next-N failure forces (counted down here)."""
        scoped = f"{kind}:{tenant}" if tenant else None
        with self.lock:
            spec = {**self.default, **self.by_kind.get("all", {}), **self.by_kind.get(kind, {}),
                    **self.by_kind.get(scoped, {})}
            # The next-N failures are counted where they were set: the tenant's own, else the kind's, else all's.
            owner = next((k for k in (scoped, kind, "all") if self.by_kind.get(k, {}).get("fail_next")), None)
            if owner is None:
                return spec, None
            failing = self.by_kind[owner]
            spec["retry_after"] = failing.get("retry_after", spec.get("retry_after", 1))
            failing["fail_next"] = int(failing["fail_next"]) - 1
            return spec, int(failing.get("fail_status", 503))

    def apply(self, kind: str, tenant: str | None = None) -> Response | None:
        if kind == "control":
            return None
        spec, forced = self._settle(kind, tenant)
        delay = spec.get("latency_ms", 0) + random.uniform(0, spec.get("jitter_ms", 0))
        if delay:
            time.sleep(delay / 1000)
        if forced is None:
            roll = random.random()
            if roll < spec.get("rate_429", 0):
                forced = 429
            elif roll < spec.get("rate_429", 0) + spec.get("rate_503", 0):
                forced = 503
        return None if forced is None else failure(kind, forced, str(spec.get("retry_after", 1)))


def failure(kind: str, status: int, retry_after: str) -> Response:
    """A forced failure in the shape of the kind's service."""
    headers = {"Retry-After": retry_after}
    if kind == "imds":
        return Response(status, {"error": "temporarily_unavailable" if status != 410 else "gone",
                                 "error_description": f"IMDS answered {status}"}, headers=headers)
    if kind in ("token", "discovery"):
        return Response(status, entra_error_body("temporarily_unavailable", 0, "Service unavailable"), headers=headers)
    return Response(status, {"error": {"code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                       "message": f"Injected {status}"}}, headers=headers)


class RequestLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_endpoint: Counter = Counter()
        self.by_tenant: Counter = Counter()

    def add(self, kind: str, tenant: str | None) -> None:
        with self.lock:
            self.by_endpoint[kind] += 1
            if tenant:
                self.by_tenant[tenant] += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {"total": sum(self.by_endpoint.values()), "by_endpoint": dict(self.by_endpoint),
                    "by_tenant": dict(self.by_tenant)}

    def reset(self) -> None:
        with self.lock:
            self.by_endpoint.clear()
            self.by_tenant.clear()
