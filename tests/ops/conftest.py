"""Real receivers for alert deliveries: an SMTP server (aiosmtpd) and an HTTP server that verifies the signature."""
import hashlib
import hmac
import json
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content)
        self.messages.append({"to": list(envelope.rcpt_tos), "subject": message["Subject"],
                              "body": message.get_payload(decode=True).decode()})
        return "250 OK"

    def subjects(self, prefix: str = "") -> list[str]:
        return [m["subject"] for m in self.messages if prefix in m["subject"]]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free port; the portal's mail goes there over SMTP."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    inbox.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    yield inbox
    controller.stop()


@pytest.fixture
def webhook_receiver():
    """A real HTTP server: it verifies X-Portal-Signature with `secret` (set once the channel exists) and answers
    `status` (200 unless a test says otherwise)."""
    state = SimpleNamespace(secret="", status=200, location="", received=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            timestamp = self.headers.get("X-Portal-Timestamp", "")
            expected = "sha256=" + hmac.new(state.secret.encode(), timestamp.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
            verified = bool(state.secret) and hmac.compare_digest(expected, self.headers.get("X-Portal-Signature", ""))
            state.received.append({"path": self.path, "verified": verified, "json": json.loads(body),
                                   "headers": dict(self.headers)})
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()
