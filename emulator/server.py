"""The emulator's listeners: one HTTPS port (login, Graph, ARM, control) and one plain-HTTP port (IMDS), threaded.

Faults and latency (emulator/faults.py) are injected here, per endpoint kind, before a request reaches its service
(emulator/routes.py).
"""
import json
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from emulator import signin, signin_code
from emulator.faults import Faults, RequestLog
from emulator.keys import Keys
from emulator.protocol import Response
from emulator.routes import classify, route
from emulator.world import APP_ID, World

_FIRST_SEGMENT = re.compile(r"^/([^/]+)/")


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
            match = _FIRST_SEGMENT.match(path)
            tenant = match.group(1) if kind in ("token", "discovery", "consent") and match else None
            emu.log.add(kind, tenant)
        response = emu.faults.apply(kind, tenant)
        if response is None:
            try:
                response = route(emu, method, path, query, body, self.headers, kind)
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
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return  # a client went away (a killed worker, a test ending): not the emulator's problem
        super().handle_error(request, client_address)


class Emulator:
    """Start with .start() (or as a context manager); .base_url, .imds_url, .ca_path, .info, .world."""

    def __init__(self, world: dict, state_dir, host="127.0.0.1", port=0, imds_port=0, latency_ms=0, jitter_ms=0):
        self.state_dir = Path(state_dir)
        self.keys = Keys(self.state_dir)
        self.world = World(world, self.state_dir)
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
        signin_code.state_of(self).reset()
        with self.mi_cache_lock:
            self.mi_cache.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
