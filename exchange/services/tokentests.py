"""Token tests: queueing one, and executing a batch — claim, hold what an outage blocks, run the chains side by side
on the chain pool, feed the circuit breaker, record (exchange.services.outcomes)."""
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, replace

from django.conf import settings

from exchange import chain, faults
from exchange.breaker import Outage, breaker_observe, endpoints_degraded, outages_open, probe_take
from exchange.models import ManagedIdentity, Sweep, TokenTest
from exchange.pool import await_chains, chain_pool
from exchange.selectors import agreed_grants, worker_identity
from exchange.services.estop_guard import estop_halted_error, estop_halts, estop_tests_held
from exchange.services.leases import claim, hand_back, lease_owner, renew
from exchange.services.outcomes import Execution, endpoint_pair, hand_back_for_retry, record_or_hand_back
from exchange.services.queue import enqueue
from portal.services import Actor, audit_record

logger = logging.getLogger(__name__)
IDENTITY_MAX_AGE = 60  # seconds a sweep's test may use this process's earlier read of the worker identity
NO_IDENTITY = "no_identity"


def token_test_start(*, tenant, trigger: str, actor: Actor, requested_by=None, sweep: Sweep | None = None) -> TokenTest:
    """Queue one token test for a tenant; the task is sent once the transaction commits."""
    test = TokenTest(tenant=tenant, trigger=trigger, requested_by=requested_by, sweep=sweep)
    test.full_clean(exclude=["tenant", "sweep", "requested_by"])
    test.save()
    audit_record(action="tokentest.queued", actor=actor, target_type="tokentest", target_id=str(test.pk),
                 tenant_id=str(tenant.tenant_id), detail={"trigger": trigger})
    enqueue([test.pk])
    return test


def crashed(exc: BaseException) -> chain.ChainResult:
    """A chain that raised instead of returning: our own failure (e.g. the shared cache), never the tenant's."""
    failure = faults.classify("batch", exc=exc)
    if failure.kind != faults.INFRASTRUCTURE:  # whatever escaped the chain is ours, even a network error
        failure = replace(failure, kind=faults.INFRASTRUCTURE, code=faults.INFRASTRUCTURE)
    return chain.ChainResult([], failure.code, True, None, {}, failure)


def _run_chain(test: TokenTest, identity: ManagedIdentity | None, grants: list[dict]) -> chain.ChainResult:
    if identity is None:
        return chain.ChainResult([], NO_IDENTITY)
    tenant, app = test.tenant, test.tenant.home_app
    return chain.run(app=app, identity=identity, tenant_id=str(tenant.tenant_id), tenant_cloud=tenant.cloud,
                     retrying=test.attempts > 1, reuse_home_proof=test.sweep_id is not None, grants=grants,
                     halt=lambda: estop_halts(test.pk))


def _outage_of(test: TokenTest, outages: dict) -> Outage | None:
    clouds = {test.tenant.cloud, test.tenant.home_app.cloud}
    return next((outage for (cloud, _), outage in sorted(outages.items()) if cloud in clouds), None)


def _observed(runs: list[tuple[TokenTest, chain.ChainResult]]) -> dict[tuple[str, str], list[int]]:
    """Per (cloud, endpoint): the answers seen on the wire and the tenants that failed transiently there, both under
    the endpoint's name (faults.ENDPOINTS: a step's answers count for its endpoint, "arm_probe" for "arm")."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for test, result in runs:
        for step in result.steps:
            if step.ok and step.http_status:
                for endpoint in (chain.ENDPOINT_OF_STEP.get(step.name, step.name), chain.DISCOVERY_OF_STEP.get(step.name)):
                    if endpoint:
                        counts[endpoint_pair(test, endpoint)][0] += 1
        if result.transient:
            counts[endpoint_pair(test, result.endpoint)][1] += 1
    return counts


def _identities(tests: list[TokenTest]) -> dict[int, ManagedIdentity | None]:
    """The worker identity of each test's home app, read once per app (a sweep's may be this process's recent read)."""
    identities: dict[int, ManagedIdentity | None] = {}
    for test in tests:
        app = test.tenant.home_app
        if app.pk not in identities:
            identities[app.pk] = worker_identity(app, max_age=IDENTITY_MAX_AGE if test.sweep_id else 0)
    return identities


@dataclass
class _Batch:
    to_run: list[TokenTest]
    owner: str
    deadline: float | None


def _run_all(batch: _Batch) -> list[chain.ChainResult | None]:
    """Every chain on the pool while the leases are renewed; None for a test the time budget left unstarted."""
    identities = _identities(batch.to_run)
    grants = agreed_grants(test.tenant for test in batch.to_run)

    def run(index: int):
        test = batch.to_run[index]
        if index and batch.deadline is not None and time.monotonic() > batch.deadline:
            return None
        try:
            return _run_chain(test, identities[test.tenant.home_app.pk], grants[test.tenant.pk])
        except Exception as exc:  # noqa: BLE001 - the chain's own failures are results; this is ours
            logger.warning("token test %s: the chain raised %s", test.pk, type(exc).__name__)
            return crashed(exc)

    futures = [chain_pool().submit(run, i) for i in range(len(batch.to_run))]
    index_of = {future: i for i, future in enumerate(futures)}
    await_chains(futures, lambda pending: renew([batch.to_run[index_of[f]].pk for f in pending], owner=batch.owner))
    return [future.result() for future in futures]


def _hold_transients(runs, held: dict, outages: dict) -> None:
    """A transient failure during an outage is held too: it spends no attempt."""
    for test, result in runs:
        if result.transient and test.pk not in held and (
                outage := outages.get(endpoint_pair(test, result.endpoint)) or _outage_of(test, outages)):
            held[test.pk] = outage


def _degraded(runs, *, now) -> set[tuple[str, str]]:
    """The (cloud, endpoint) pairs where tests out of attempts failed transiently and many tenants fail too."""
    out_of_attempts = {endpoint_pair(test, result.endpoint) for test, result in runs
                       if result.transient and test.attempts >= settings.TOKEN_TEST_MAX_ATTEMPTS}
    return endpoints_degraded(out_of_attempts, now=now) if out_of_attempts else set()


def token_tests_execute(*, test_ids: list[int], budget_seconds: float | None = None,
                        now=None) -> tuple[list[Execution], list[int]]:
    """Claim the due tests of `test_ids`, run their chains side by side (up to TOKEN_TEST_THREADS at once) while
    renewing their leases, then record every step and outcome in one transaction.

    Tests of a cloud whose endpoint is in an outage (circuit breaker open) are held: handed back with a delay, no
    attempt spent, while one of them probes. Tests not started within `budget_seconds` (the first always starts) are
    left queued and returned, for the caller to send on their own. A chain that met our own failure is handed back;
    if recording fails, what can be recorded is, and the rest is handed back. Returns the executions (a held or
    handed-back test has one with its delay; a test not claimable has none) and the tests left unstarted."""
    held_by_stop = set(estop_tests_held(test_ids))  # the emergency stop: not even claimed
    owner = lease_owner()
    tests = claim([pk for pk in test_ids if pk not in held_by_stop], owner=owner, now=now)
    if not tests:
        return [], []
    outages = outages_open(now=now)
    held = {test.pk: outage for test in tests
            if (outage := _outage_of(test, outages)) and not probe_take(outage, now=now)}
    to_run = [test for test in tests if test.pk not in held]
    deadline = time.monotonic() + budget_seconds if budget_seconds else None
    results = list(zip(to_run, _run_all(_Batch(to_run, owner, deadline)), strict=True))

    unstarted = [test.pk for test, result in results if result is None]
    halted = [test.pk for test, result in results if result is not None and result.code == chain.HALTED]
    ours = [test.pk for test, result in results if result is not None and result.infrastructure]
    runs = [(test, result) for test, result in results
            if result is not None and not result.infrastructure and result.code != chain.HALTED]
    outages = breaker_observe(counts=_observed(runs), now=now) if runs else outages
    _hold_transients(runs, held, outages)
    degraded = _degraded(runs, now=now)
    runs += [(test, None) for test in tests if test.pk in held and test not in to_run]
    executions = record_or_hand_back(runs, owner=owner, held=held, degraded=degraded, now=now)
    hand_back(unstarted, owner=owner)
    return executions + _hold_halted(halted, owner=owner) + hand_back_for_retry(ours, owner=owner), unstarted


def _hold_halted(test_ids: list[int], *, owner: str) -> list[Execution]:
    """Chains the emergency stop halted between hops: back to the queue, held, no attempt spent, nothing recorded."""
    if not test_ids:
        return []
    return [Execution(pk, TokenTest.Status.QUEUED)
            for pk in hand_back(test_ids, owner=owner, error=estop_halted_error())]


def token_test_execute(*, test_id: int, now=None) -> Execution | None:
    """Claim a due test, run the chain, record its steps, then finish it or schedule a retry.

    Returns None when the test was not claimable (a duplicate delivery, a retry not yet due, or already finished).
    """
    executions, _ = token_tests_execute(test_ids=[test_id], now=now)
    return executions[0] if executions else None


def token_tests_execute_and_requeue(*, test_ids: list[int]) -> None:
    """What a task does with its tests (one, or a sweep's batch): run them, then send the retries (those due at the
    same time as one batch) and each test the time budget left unstarted, as a task of its own."""
    executions, unstarted = token_tests_execute(test_ids=test_ids, budget_seconds=settings.TOKEN_TEST_BATCH_SECONDS)
    retries = defaultdict(list)
    for execution in executions:
        if execution.retry_in is not None:
            retries[execution.retry_in].append(execution.test_id)
    for delay, ids in retries.items():
        enqueue(ids, countdown=delay, batch=settings.SWEEP_BATCH_SIZE)
    enqueue(unstarted)
