"""The managed-identity token from IMDS, through MSAL's ManagedIdentityClient (which caches it in memory)."""
import os
import threading
from dataclasses import replace

import msal

from exchange.faults import IMDS, PERMANENT, Failure, classify
from exchange.http import ImdsClient, NoAnswer, wire

_clients: dict[tuple[str, str], msal.ManagedIdentityClient] = {}
_lock = threading.Lock()
_acquire_lock = threading.Lock()


class ImdsError(Exception):
    """IMDS gave no token; `failure` says what it means (faults.classify)."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure
        self.code, self.message = failure.error or failure.code, failure.message
        self.http_status, self.transient, self.retry_after = failure.http_status, failure.transient, failure.retry_after


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


def mi_token(*, client_id: str, resource: str) -> dict:
    """An MSAL result dict with the access token, from MSAL's cache while fresh; raises ImdsError otherwise."""
    if arc_environment():
        raise ImdsError(Failure(PERMANENT, "IMDS:arc", IMDS, error="arc", message=(
            "This machine is Azure Arc-enabled: its only identity is system-assigned, which a federated credential "
            "cannot trust.")))
    record = wire()
    before = record.requests
    try:
        with _acquire_lock:  # one IMDS call per process, not one per thread that finds the cache empty
            result = _client(client_id).acquire_token_for_client(resource=resource)
    except (NoAnswer, ValueError) as exc:  # ValueError: json.JSONDecodeError, an answer that is not JSON
        on_wire = record.requests > before
        failure = classify(IMDS, exc=exc, status=record.status if on_wire else None,
                           retry_after=record.retry_after if on_wire else None)
        if isinstance(exc, ValueError):
            failure = replace(failure, message=f"IMDS answered HTTP {failure.http_status} with a body that is not "
                                               "JSON")
        raise ImdsError(failure) from exc
    on_wire = record.requests > before
    status = record.status if on_wire else None
    if "access_token" in result:
        result["_http_status"] = status
        return result
    # MSAL's MI client never checks the status: an error JSON comes back as a dict (ENTRA_FACTS).
    failure = classify(IMDS, status=status, error=result, retry_after=record.retry_after if on_wire else None,
                       replayed=not on_wire)
    if failure.transient:
        # MSAL would replay this answer from its throttle cache; the retry policy is ours (with backoff).
        with _lock:
            _clients.pop((client_id, _imds_url()), None)
    raise ImdsError(replace(failure, message=str(result.get("error_description") or failure.message)))


def reset_clients() -> None:
    with _lock:
        _clients.clear()
