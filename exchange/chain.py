"""The exchange chain for one tenant: IMDS → (home tenant) → customer tenant → ARM probe, every hop recorded.

Tokens stay in local variables of this module: only their non-secret claims leave it (ChainStep.claims).
"""
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from http import HTTPStatus

from exchange import arm, entra, imds
from exchange.chain_access import ACCESS_STEP, DEFAULT_GRANTS, NO_ROLE, VERIFIED, access_hop, probed_subscription
from exchange.chain_steps import ChainResult, ChainStep, Step, redact, step_failed
from exchange.chain_tokens import ID_FIELD_MAX, TokenHop, app_token, identity_token, token_hop
from exchange.clouds import CLOUDS
from exchange.faults import (
    ARM,
    HOME_DISCOVERY,
    HOME_TOKEN,
    IMDS,
    INFRASTRUCTURE,
    TENANT_DISCOVERY,
    TENANT_TOKEN,
    classify,
)
from exchange.http import reset_sessions
from exchange.selectors import forget_worker_identities

logger = logging.getLogger(__name__)


__all__ = ["ChainResult", "ChainStep", "redact", "run", "app_token", "identity_token", "reset_clients", "NO_ROLE",
           "VERIFIED"]


# The chain's steps, by name (TokenTestStep.name), and the codes of a chain that got an answer.
IMDS_STEP, HOME_STEP, TENANT_STEP, ARM_STEP = "imds", "home_token", "tenant_token", "arm_probe"
HALTED = "halted"  # stopped between hops by the emergency stop: not an outcome, the test is held


# Home-tenant proofs of the FIC, per (app, identity): a sweep proves the FIC once per worker process and window, not
# once per tenant (the customer-tenant exchange that follows proves it again anyway).
HOME_PROOF_SECONDS = 300
_home_proofs: dict[tuple[int, int], tuple[float, dict]] = {}
_home_locks: dict[tuple[int, int], threading.Lock] = {}
# The circuit breaker's endpoint of each step (faults.ENDPOINTS): answers and failures are counted under one name.
ENDPOINT_OF_STEP = {IMDS_STEP: IMDS, HOME_STEP: HOME_TOKEN, TENANT_STEP: TENANT_TOKEN, ARM_STEP: ARM, ACCESS_STEP: ARM}
# A token step that got an answer read its tenant's discovery document too (MSAL builds its client first): that
# answer counts for the discovery endpoint, so its breaker can close.
DISCOVERY_OF_STEP = {HOME_STEP: HOME_DISCOVERY, TENANT_STEP: TENANT_DISCOVERY}


def run(*, app, identity, tenant_id: str, tenant_cloud: str, retrying: bool = False,
        reuse_home_proof: bool = False, grants=None, halt: Callable[[], bool] | None = None) -> ChainResult:
    """Run the chain once. Never raises: a failure of Microsoft's side becomes a failed step, and so does a failure
    of our own (classified INFRASTRUCTURE: the tenant was not tested). `grants`: the agreed access, [{"role",
    "scope"}] (chain_access; None: Reader on every subscription the app sees). `halt()`, asked before each hop, stops
    the chain there (the emergency stop): its result's code is HALTED, and nothing in it is the tenant's."""
    steps: list[ChainStep] = []
    try:
        return _run(steps, app=app, identity=identity, tenant_id=tenant_id, tenant_cloud=tenant_cloud,
                    retrying=retrying, reuse_home_proof=reuse_home_proof, grants=grants, halt=halt or _never)
    except Exception as exc:  # outside any hop's own handling: ours by definition
        logger.exception("The chain for tenant %s failed on our side", tenant_id)
        endpoint = ENDPOINT_OF_STEP.get(steps[-1].name if steps else IMDS_STEP, IMDS)
        failure = classify(endpoint, exc=exc)
        if failure.kind != INFRASTRUCTURE:  # e.g. a stray network error: still never a permanent verdict on the tenant
            failure = replace(failure, kind=INFRASTRUCTURE, code=INFRASTRUCTURE)
        step = steps[-1] if steps and not steps[-1].ok else Step(steps, "chain").step
        return step_failed(steps, step, failure)


def _imds_hop(steps: list[ChainStep], identity, audience: str) -> ChainResult | None:
    """1. The managed-identity token from IMDS (cached by MSAL while fresh: one IMDS call per worker process)."""
    with Step(steps, IMDS_STEP) as step:
        try:
            result = identity_token(identity=identity, audience=audience)
        except imds.ImdsError as exc:
            return step_failed(steps, step, exc.failure, {"error": exc.code, "error_description": exc.message[:500]})
        step.ok, step.http_status = True, result.get("_http_status")
        step.claims = redact(result["access_token"])
        step.detail = {"source": result.get("token_source", ""), "resource": audience}
        del result
    return None


def _home_hop(steps: list[ChainStep], hop: TokenHop, *, reuse_proof: bool) -> ChainResult | None:
    """2. Optional: the same exchange in the home tenant proves the FIC itself, apart from consent. A sweep proves
    it once per process and window: one thread proves it, the others wait for its proof."""
    home = str(hop.app.home_tenant_id)
    key = (hop.app.pk, hop.identity.pk)
    with _home_locks.setdefault(key, threading.Lock()) if reuse_proof else nullcontext():
        proof = _home_proofs.get(key) if reuse_proof else None
        if proof and proof[0] > time.monotonic():
            with Step(steps, HOME_STEP) as step:
                step.ok, step.claims = True, proof[1]
                step.detail = {"tenant": home, "scope": hop.scope, "source": "proven earlier by this worker"}
            return None
        failed, _ = token_hop(steps, HOME_STEP, home, hop, endpoints=(HOME_DISCOVERY, HOME_TOKEN))
        if failed:
            return failed
        _home_proofs[key] = (time.monotonic() + HOME_PROOF_SECONDS, steps[-1].claims)
    return None


def _arm_answer(steps, step, app, probe) -> ChainResult | None:
    """The probe's failure, or None: it answered (the subscriptions the app sees, maybe none, go on to the check)."""
    step.http_status, step.correlation_id = probe.http_status, probe.correlation_id[:ID_FIELD_MAX]
    step.detail = {"resource_id": app.probe_resource_id} if app.probe_resource_id else {}
    if probe.http_status != HTTPStatus.OK:
        failure = classify(ARM, status=probe.http_status, retry_after=probe.retry_after,
                           error={"error": {"code": probe.error_code, "message": probe.message}})
        return step_failed(steps, step, failure, {"error": probe.error_code, "http_status": probe.http_status})
    if app.probe_resource_id:
        step.detail["resource"] = probe.resource
    else:
        step.detail["subscriptions"] = probe.subscriptions
    step.ok = True
    return None


def _arm_hop(steps: list[ChainStep], app, tenant_cloud: str, access_token: str) -> tuple[ChainResult | None, list]:
    """4. The ARM probe: what the app can see (its subscriptions, or the probe resource)."""
    with Step(steps, ARM_STEP) as step:
        try:
            probe = arm.probe(arm_base=CLOUDS[tenant_cloud].arm_base, access_token=access_token,
                              resource_id=app.probe_resource_id)
        except Exception as exc:  # noqa: BLE001
            return step_failed(steps, step, classify(ARM, exc=exc)), []
        return _arm_answer(steps, step, app, probe), probe.subscriptions or probed_subscription(app.probe_resource_id)


def _tenant_claims(steps: list[ChainStep]) -> dict:
    return next((s.claims for s in steps if s.name == TENANT_STEP), {})


def _never() -> bool:
    return False


def _run(steps: list[ChainStep], *, app, identity, tenant_id: str, tenant_cloud: str, retrying: bool,
         reuse_home_proof: bool, grants, halt: Callable[[], bool]) -> ChainResult:
    failed = ChainResult(steps, HALTED) if halt() else _imds_hop(steps, identity, app.exchange_audience)
    if failed:
        return failed
    hop = TokenHop(app, identity, tenant_cloud, CLOUDS[tenant_cloud].arm_scope, retrying)
    if app.verify_home_token:
        failed = ChainResult(steps, HALTED) if halt() else _home_hop(steps, hop, reuse_proof=reuse_home_proof)
        if failed:
            return failed
    # 3. The customer-tenant token.
    if halt():
        return ChainResult(steps, HALTED)
    failed, access_token = token_hop(steps, TENANT_STEP, tenant_id, hop,
                                     endpoints=(TENANT_DISCOVERY, TENANT_TOKEN))
    if failed:
        return failed
    if halt():
        del access_token
        return ChainResult(steps, HALTED)
    failed, subscriptions = _arm_hop(steps, app, tenant_cloud, access_token)
    if failed:
        return failed
    if halt():
        return ChainResult(steps, HALTED)
    # 5. The agreed access, held by the app's service principal in this tenant (the token's oid).
    return access_hop(steps, arm_base=CLOUDS[tenant_cloud].arm_base, access_token=access_token,
                      principal_id=str(_tenant_claims(steps).get("oid", "")), grants=grants or DEFAULT_GRANTS,
                      subscriptions=subscriptions)


def reset_clients() -> None:
    """Forget every cached client, token and identity (tests that change the emulator's state between runs)."""
    imds.reset_clients()
    entra.reset_clients()
    _home_proofs.clear()
    forget_worker_identities()
    reset_sessions()
