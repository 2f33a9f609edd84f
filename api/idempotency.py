"""Idempotency-Key handling: a retried request with the same key gets the first answer back."""
import hashlib
import json

from django.db import transaction
from django.http import JsonResponse
from ninja import Status
from ninja.responses import NinjaJSONEncoder

from api import services
from api.problems import Problem


def idempotent_run(request, run, *, owner: str):
    """Claim the key, run the request and record its answer in one transaction: the request's writes and its key
    commit together or not at all (an error leaves the key free for a fixed retry), and a concurrent duplicate waits
    on the key's row, then replays the answer."""
    key = request.headers["Idempotency-Key"].strip()
    if not key or len(key) > 255:
        raise Problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", "1 to 255 characters.")
    digest = hashlib.sha256(request.body).hexdigest()
    with transaction.atomic():
        found = services.idempotency_claim(owner=owner, key=key, method=request.method, path=request.path,
                                           request_hash=digest)
        if found is not None:
            return _replay(found)
        result = run()
        status, body = (result.status_code, result.value) if isinstance(result, Status) else (200, result)
        # An answer holding a secret shown once (a view's OnceOnly body) is not kept: only a note of what was done.
        stored = getattr(body, "idempotency_record", None)
        if stored is not None:
            stored = {"replay": False, **stored}
        else:  # as the response renders it (ninja's encoder: ISO dates with milliseconds and Z)
            stored = json.loads(json.dumps(_jsonable(body), cls=NinjaJSONEncoder))
        services.idempotency_store(owner=owner, key=key, status=status, body=stored)
    return result


def _replay(found: services.Replay):
    if not found.same_request:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "This key was used for another request: use a new key for a new request.")
    if found.status is None:
        raise Problem(409, "idempotency-key-in-use", "Request in progress",
                      "A request with this Idempotency-Key is still running: retry in a moment.", {"Retry-After": "1"})
    if (found.body or {}).get("replay") is False:
        raise Problem(409, "not-replayable", "Already done; the answer is not kept",
                      found.body.get("detail", "The first request with this key succeeded."),
                      **{k: v for k, v in found.body.items() if k not in ("replay", "detail")})
    response = JsonResponse(found.body, status=found.status, safe=False)
    response["Idempotent-Replayed"] = "true"
    return response


def _jsonable(body):
    if hasattr(body, "model_dump"):
        return body.model_dump(mode="json")
    return body
