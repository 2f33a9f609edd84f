"""The managed-identity token from IMDS, through MSAL's ManagedIdentityClient (which caches it in memory)."""
import json
import os
import threading

import msal

from exchange.http import ImdsClient, NoAnswer, wire

_clients: dict[tuple[str, str], msal.ManagedIdentityClient] = {}
_lock = threading.Lock()
_acquire_lock = threading.Lock()


class ImdsError(Exception):
    def __init__(self, code: str, message: str, *, http_status=None, transient=False, retry_after=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.http_status, self.transient, self.retry_after = http_status, transient, retry_after


def arc_environment() -> bool:
    """Azure Arc serves IMDS on localhost:40342 with only a system-assigned identity: it cannot be a FIC's subject."""
    return bool(os.environ.get("IDENTITY_ENDPOINT") and os.environ.get("IMDS_ENDPOINT"))


def _imds_url() -> str:
    from django.conf import settings

    return settings.IMDS_URL


def _client(client_id: str) -> msal.ManagedIdentityClient:
    key = (client_id, _imds_url())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = msal.ManagedIdentityClient(
                msal.UserAssignedManagedIdentity(client_id=client_id), http_client=ImdsClient()
            )
    return client


# IMDS answers to retry (ENTRA_FACTS, IMDS): 404, 410 (IMDS updating, back within 70 s), 429 and 5xx.
TRANSIENT_STATUSES = {404, 410, 429}


def mi_token(*, client_id: str, resource: str) -> dict:
    """An MSAL result dict with the access token, from MSAL's cache while fresh; raises ImdsError otherwise."""
    if arc_environment():
        raise ImdsError("arc", "This machine is Azure Arc-enabled: its only identity is system-assigned, which a "
                        "federated credential cannot trust.")
    record = wire()
    before = record.requests
    try:
        with _acquire_lock:  # one IMDS call per process, not one per thread that finds the cache empty
            result = _client(client_id).acquire_token_for_client(resource=resource)
    except NoAnswer as exc:
        raise ImdsError("unreachable", f"IMDS did not answer: {exc}.", transient=True) from exc
    except json.JSONDecodeError as exc:
        status = record.status
        raise ImdsError("unexpected_reply", f"IMDS answered HTTP {status} with a body that is not JSON",
                        http_status=status, transient=status in TRANSIENT_STATUSES or (status or 0) >= 500,
                        retry_after=record.retry_after) from exc
    status = record.status if record.requests > before else None
    if "access_token" in result:
        result["_http_status"] = status
        return result
    error = str(result.get("error", "unknown"))
    description = str(result.get("error_description", ""))
    transient = status is not None and (status in TRANSIENT_STATUSES or status >= 500)
    if transient:
        # MSAL would replay this answer from its throttle cache; the retry policy is ours (with backoff).
        with _lock:
            _clients.pop((client_id, _imds_url()), None)
    raise ImdsError(error, description or error, http_status=status, transient=transient,
                    retry_after=record.retry_after)


def reset_clients() -> None:
    with _lock:
        _clients.clear()
