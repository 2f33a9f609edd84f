"""Writes of the ops app, one module per concern: the state watcher (watcher), routing and the digest (routing),
delivery by e-mail and signed webhooks (delivery), channels, routes and the metrics guard (config)."""
from ops.services.config import channel_create, channel_delete, metrics_allowed, route_create, route_delete
from ops.services.delivery import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryError,
    delivery_send,
    payload_for,
    signature,
    webhook_url_check,
)
from ops.services.routing import alerts_save, digest_send
from ops.services.watcher import alerts_watch

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "DeliveryError", "alerts_save", "alerts_watch",
           "channel_create", "channel_delete", "delivery_send", "digest_send", "metrics_allowed", "payload_for",
           "route_create", "route_delete", "signature", "webhook_url_check"]
