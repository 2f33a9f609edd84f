"""The emulator's listeners: one HTTPS port (login, Graph, ARM, control) and one plain-HTTP port (IMDS), threaded.

Faults and latency are injected here, per endpoint kind, before a request reaches its handler.
"""
import json
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from emulator import handlers, signin
from emulator.keys import Keys
from emulator.world import World


class Response:
    def __init__(self, status=200, body=b"", content_type="application/json; charset=utf-8", headers=None):
        self.status, self.content_type, self.headers = status, content_type, dict(headers or {})
        self.body = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if not isinstance(body, str) else body.encode())


def classify(method: str, path: str) -> str:
    """The endpoint kind a request counts under (and that faults are configured for)."""
    if path.startswith("/_emulator/"):
        return "control"
    if path.startswith("/metadata/identity"):
        return "imds"
    if path.startswith("/v1.0/") or path.startswith("/beta/"):
        return "graph"
    if path.startswith("/subscriptions") or path.startswith("/providers"):
        return "arm"
    if path.startswith("/_issuers/"):
        return "oidc_issuer"
    if path.endswith("/oauth2/v2.0/token") or path.endswith("/oauth2/token"):
        return "token"
    if "adminconsent" in path:
        return "consent"
    if "openid-configuration" in path or "/discovery/" in path:
        return "discovery"
    return "other"


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

    def apply(self, kind: str, tenant: str | None = None) -> Response | None:
        if kind == "control":
            return None
        scoped = f"{kind}:{tenant}" if tenant else None
        with self.lock:
            spec = {**self.default, **self.by_kind.get("all", {}), **self.by_kind.get(kind, {}),
                    **self.by_kind.get(scoped, {})}
            forced = None
            # The next-N failures are counted where they were set: the tenant's own, else the kind's, else all's.
            owner = next((k for k in (scoped, kind, "all") if self.by_kind.get(k, {}).get("fail_next")), None)
            if owner is not None:
                failing = self.by_kind[owner]
                forced = int(failing.get("fail_status", 503))
                spec["retry_after"] = failing.get("retry_after", spec.get("retry_after", 1))
                failing["fail_next"] = int(failing["fail_next"]) - 1
        delay = spec.get("latency_ms", 0) + random.uniform(0, spec.get("jitter_ms", 0))
        if delay:
            time.sleep(delay / 1000)
        if forced is None:
            roll = random.random()
            if roll < spec.get("rate_429", 0):
                forced = 429
            elif roll < spec.get("rate_429", 0) + spec.get("rate_503", 0):
                forced = 503
        if forced is None:
            return None
        retry_after = str(spec.get("retry_after", 1))
        if kind == "imds":
            return Response(forced, {"error": "temporarily_unavailable" if forced != 410 else "gone",
                                     "error_description": f"IMDS answered {forced}"}, headers={"Retry-After": retry_after})
        if kind in ("token", "discovery"):
            return Response(forced, handlers.entra_error_body("temporarily_unavailable", 0, "Service unavailable"),
                            headers={"Retry-After": retry_after})
        return Response(forced, {"error": {"code": "TooManyRequests" if forced == 429 else "ServiceUnavailable",
                                           "message": f"Injected {forced}"}}, headers={"Retry-After": retry_after})


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


_GUID_PREFIX = re.compile(r"^/([^/]+)/")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KeylessEmulator/1.0"
    emulator: "Emulator"  # set on the subclass made per listener

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # quiet: the request log counts calls instead
        return

    def _dispatch(self, method: str):
        split = urlsplit(self.path)
        path = re.sub(r"/{2,}", "/", split.path)  # msgraph-sdk sends `/v1.0//applications...`
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = classify(method, path)
        emu = self.emulator
        tenant = None
        if kind != "control":
            match = _GUID_PREFIX.match(path)
            tenant = match.group(1) if kind in ("token", "discovery", "consent") and match else None
            emu.log.add(kind, tenant)
        response = emu.faults.apply(kind, tenant)
        if response is None:
            try:
                response = handlers.route(emu, method, path, query, body, self.headers, kind)
            except Exception as exc:  # an emulator bug must answer, not hang the client
                response = Response(500, {"error": "emulator_error", "error_description": repr(exc)})
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return  # a client went away (a killed worker, a test ending): not the emulator's problem
        super().handle_error(request, client_address)


class Emulator:
    """Start with .start() (or as a context manager); .base_url, .imds_url, .ca_path, .info, .world."""

    def __init__(self, world: dict, state_dir, host="127.0.0.1", port=0, imds_port=0, latency_ms=0, jitter_ms=0):
        self.state_dir = Path(state_dir)
        self.keys = Keys(self.state_dir)
        self.world = World(world, self.state_dir)
        self.state = self.world  # in-process inspection
        self.faults = Faults(latency_ms, jitter_ms)
        self.log = RequestLog()
        self.skew_seconds = 0.0
        self.fic_propagation_seconds = 0.0
        self.mi_cache: dict = {}
        self.mi_cache_lock = threading.Lock()
        handler = type("BoundHandler", (Handler,), {"emulator": self})
        self._https = _Server((host, port), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.keys.cert_path, self.keys.cert_key_path)
        self._https.socket = context.wrap_socket(self._https.socket, server_side=True)
        self._imds = _Server((host, imds_port), handler)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.base_url = f"https://{shown}:{self._https.server_address[1]}"
        self.imds_url = f"http://{shown}:{self._imds.server_address[1]}"
        self.ca_path = str(self.keys.ca_path)
        self._threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.time() + self.skew_seconds

    @property
    def info(self) -> dict:
        from emulator.world import APP_ID

        data = self.world.data
        app = self.world.app(APP_ID) or (data["apps"][0] if data["apps"] else {})
        mi = data["managed_identities"][0] if data["managed_identities"] else {}
        home = self.world.tenant(app.get("tenant", "")) if app else None
        customers = []
        for tenant in data["tenants"]:
            if home and tenant["id"] == home["id"]:
                continue
            sp = self.world.service_principal(tenant["id"], app.get("app_id", "")) if app else None
            customers.append({"id": tenant["id"], "domain": (tenant["domains"] or [""])[0],
                              "display_name": tenant["display_name"], "cloud": tenant["cloud"],
                              "consented": bool(sp),
                              "subscriptions": len(self.world.subscriptions_for(tenant["id"], sp["object_id"]))
                              if sp else 0})
        return {
            "base_url": self.base_url, "imds_url": self.imds_url, "ca_path": self.ca_path,
            "demo": {
                "home_tenant": {"id": home["id"], "domain": home["domains"][0]} if home else {},
                "app": {"app_id": app.get("app_id"), "object_id": app.get("object_id"),
                        "display_name": app.get("display_name")},
                "managed_identity": {k: mi.get(k) for k in ("client_id", "principal_id", "resource_id", "name")},
                "customers": customers,
                "signin": signin.demo_info(self.world),
            },
        }

    def start(self) -> "Emulator":
        for server in (self._https, self._imds):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            thread.start()
            self._threads.append(thread)
        # Written whole, then renamed: a reader polling for the file never sees it half-written.
        partial = self.state_dir / "emulator.json.partial"
        partial.write_text(json.dumps(self.info, indent=2))
        partial.replace(self.state_dir / "emulator.json")
        return self

    def stop(self) -> None:
        for server in (self._https, self._imds):
            server.shutdown()
            server.server_close()

    def reset(self) -> None:
        """Back to the loaded world, with no faults, skew, propagation delay, cached tokens or logged requests."""
        self.world.reset()
        self.faults.reset()
        self.log.reset()
        self.skew_seconds = 0.0
        self.fic_propagation_seconds = 0.0
        signin.state_of(self).reset()
        with self.mi_cache_lock:
            self.mi_cache.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
