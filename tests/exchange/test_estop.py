"""The emergency stop against the emulator: sweeps refused, token tests held (no request reaches Entra), running
chains halted at their next hop, FICs deleted through Graph and re-created at restart stage 1, every stage audited."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from emulator import world as demo
from exchange import chain
from exchange.models import EmergencyStop, Sweep
from exchange.services import (
    EmergencyStopped,
    estop_current,
    fic_create,
    fic_inventory_sync,
    sweep_start,
    token_test_start,
)
from exchange.services.estop import (
    estop_abort,
    estop_engage,
    estop_restart_canary,
    estop_restart_sweeps,
    estop_restart_tests,
)
from exchange.views import diagnose
from onboarding.tasks import sweep_scheduled
from portal.models import AuditEvent
from portal.services import Actor
from tests.exchange.conftest import run_test

ADMIN = Actor.system("admin")


def _token_requests(control) -> int:
    by_endpoint = control.requests()["by_endpoint"]
    return sum(n for endpoint, n in by_endpoint.items() if "token" in endpoint or "imds" in endpoint)


def _fics_in_entra(emulator) -> set[str]:
    return {f["name"] for f in emulator.world.app(demo.APP_ID)["fics"]}


@pytest.fixture(autouse=True)
def _fresh_halt_check():
    """This process's memo of the stop (a second long) must not outlive a test whose rows are rolled back."""
    from exchange.services import estop_guard

    estop_guard._recent[0] = 0.0
    yield
    estop_guard._recent[0] = 0.0


@pytest.fixture
def fabrikam(portal_on_emulator, make_tenant):
    return make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)


def test_stop_refuses_sweeps_and_holds_tests_without_blaming_the_tenant(
        portal_on_emulator, fabrikam, staff_clients, django_capture_on_commit_callbacks):
    assert run_test(fabrikam, django_capture_on_commit_callbacks).outcome == "verified"
    estop_engage(reason="MI key suspected leaked", actor=ADMIN)
    with pytest.raises(EmergencyStopped, match="MI key suspected leaked"):
        sweep_start(tenant_pks=[fabrikam.pk], trigger=Sweep.Trigger.MANUAL, actor=ADMIN)
    response = staff_clients["operator"].post(reverse("onboarding:sweep-start"))
    assert response.status_code == 302 and response.url == reverse("exchange:estop")
    sweep_scheduled()  # beat's schedule: skipped, and said so
    assert Sweep.objects.count() == 0 and AuditEvent.objects.filter(action="sweep.skipped").count() == 1

    portal_on_emulator.control.reset_requests()
    chain.reset_clients()
    test = run_test(fabrikam, django_capture_on_commit_callbacks)  # queued and sent to its task: held
    assert (test.status, test.attempts, test.outcome) == ("queued", 0, "")
    assert test.error["held"]["reason"] == "MI key suspected leaked"
    assert _token_requests(portal_on_emulator.control) == 0  # nothing reached IMDS or Entra
    diagnosis = diagnose(test)
    assert diagnosis.code == "emergency_stop" and "nothing is wrong with this tenant" in diagnosis.cause
    fabrikam.refresh_from_db()
    assert fabrikam.last_outcome == "verified"  # nothing held against the tenant
    assert not AuditEvent.objects.filter(action="tokentest.finished", target_id=str(test.pk)).exists()


def test_a_running_chain_halts_at_its_next_hop(portal_on_emulator, fabrikam):
    asked = iter([False, True])  # the stop comes in while IMDS answers
    result = chain.run(app=portal_on_emulator.app, identity=portal_on_emulator.identity,
                       tenant_id=demo.FABRIKAM, tenant_cloud="global", halt=lambda: next(asked))
    assert result.code == chain.HALTED and [s.name for s in result.steps] == ["imds"]
    assert not result.transient and result.failure is None


def test_banner_on_staff_pages_and_who_may_act(staff_clients, portal_on_emulator):
    dashboard = reverse("console:dashboard")
    assert b"Emergency stop in force" not in staff_clients["viewer"].get(dashboard).content
    assert staff_clients["operator"].get(reverse("exchange:estop-engage")).status_code == 403
    refused = staff_clients["admin"].post(reverse("exchange:estop-engage"), {"reason": "leak"})
    assert refused.status_code == 400 and not EmergencyStop.objects.exists()  # not confirmed
    engaged = staff_clients["admin"].post(reverse("exchange:estop-engage"), {"reason": "Key leaked", "confirm": "on"})
    assert engaged.status_code == 302
    for page in (dashboard, reverse("exchange:identities"), reverse("exchange:tokentest-list")):
        body = staff_clients["viewer"].get(page).content.decode()
        assert "Emergency stop in force" in body and "Key leaked" in body and "admin-user" in body
    assert staff_clients["viewer"].post(reverse("exchange:estop-step", args=["abort"])).status_code == 403
    page = staff_clients["viewer"].get(reverse("exchange:estop")).content.decode()
    assert "Graph has no way to disable a federated credential" in page


def _recreate_by_hand(emulator, record):
    """What the administrator does in the Entra admin center (or with the az command the page shows)."""
    with emulator.world.lock:
        emulator.world.app(demo.APP_ID)["fics"].append(
            {"id": f"by-hand-{record['name']}", "name": record["name"], "issuer": record["issuer"],
             "subject": record["subject"], "audiences": record["audiences"], "description": ""})


def test_fics_deleted_then_back_at_stage_1_and_every_stage_audited(
        portal_on_emulator, fabrikam, django_capture_on_commit_callbacks):
    """The portal reads Graph with the workers' own identity, through the FIC the stop deletes: stage 1 cannot
    re-create it through Graph, says so with the values to re-create it by hand, then finds it and runs the canary."""
    emulator = portal_on_emulator.emulator
    assert run_test(fabrikam, django_capture_on_commit_callbacks).outcome == "verified"
    stop = estop_engage(reason="rotate everything", actor=ADMIN, delete_fics=True)
    assert _fics_in_entra(emulator) == set()
    record = stop.deleted_fics[0]
    assert (record["name"], record["subject"], record["audiences"], record["deleted"]) == (
        "keyless-worker", demo.MI_PRINCIPAL_ID, ["api://AzureADTokenExchange"], True)
    assert record["by_hand"].startswith(f"az ad app federated-credential create --id {demo.APP_ID}")
    with django_capture_on_commit_callbacks(execute=True):
        held = token_test_start(tenant=fabrikam, trigger="manual", actor=ADMIN)
    with pytest.raises(EmergencyStopped, match="Not at this point"):
        estop_restart_tests(actor=ADMIN)  # stage 2 before stage 1

    stop = estop_restart_canary(actor=ADMIN, canary_tenant_pk=fabrikam.pk)
    assert stop.stage == "stopped" and not stop.history[-1]["ok"] and "by hand" in stop.history[-1]["summary"]
    assert "70021" in stop.history[-1]["details"]["fics"][0]["error"]
    _recreate_by_hand(emulator, record)
    with django_capture_on_commit_callbacks(execute=True):  # the canary's task runs on commit
        stop = estop_restart_canary(actor=ADMIN, canary_tenant_pk=fabrikam.pk)
    assert stop.stage == "canary" and stop.history[-1]["details"]["fics"][0]["status"] == "present"
    stop.canary_test.refresh_from_db()
    assert stop.canary_test.outcome == "verified"
    held.refresh_from_db()
    assert held.status == "queued"  # only the canary ran
    with pytest.raises(EmergencyStopped, match="Sweep"):
        sweep_start(tenant_pks=[fabrikam.pk], trigger=Sweep.Trigger.MANUAL, actor=ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        stop = estop_restart_tests(actor=ADMIN)
    held.refresh_from_db()
    assert held.outcome == "verified" and stop.history[-1]["details"]["resent"] == 1
    stop = estop_restart_sweeps(actor=ADMIN)
    assert stop.stage == "ended" and stop.current is None and estop_current() is None
    assert sweep_start(tenant_pks=[fabrikam.pk], trigger=Sweep.Trigger.MANUAL, actor=ADMIN).total == 1
    actions = list(AuditEvent.objects.filter(action__startswith="estop.").order_by("pk").values_list("action", flat=True))
    assert actions == ["estop.engaged", "estop.fics_deleted", "estop.restart_failed", "estop.restart_canary",
                       "estop.restart_tests", "estop.ended"]


def test_stage_1_recreates_through_graph_once_the_workers_fic_is_back_and_abort_deletes_again(portal_on_emulator):
    """A second FIC (a deployment pipeline's) is deleted too; once the workers' own FIC is back by hand, the portal
    has Graph again and stage 1 re-creates the other one through it. Abort deletes both again."""
    emulator, app = portal_on_emulator.emulator, portal_on_emulator.app
    fic_inventory_sync(app=app, actor=ADMIN)
    fic_create(app=app, actor=ADMIN, body={"name": "github-deploy", "issuer": "https://token.actions.githubusercontent.com",
                                           "subject": "repo:contoso/infra:ref:refs/heads/main",
                                           "audiences": ["api://AzureADTokenExchange"], "description": ""})
    stop = estop_engage(reason="leak", actor=ADMIN, delete_fics=True)
    assert [r["name"] for r in stop.deleted_fics] == ["github-deploy", "keyless-worker"]  # the workers' own last
    assert _fics_in_entra(emulator) == set()
    _recreate_by_hand(emulator, stop.deleted_fics[1])
    stop = estop_restart_canary(actor=ADMIN)
    assert {f["name"]: f["status"] for f in stop.history[-1]["details"]["fics"]} == {
        "github-deploy": "re-created", "keyless-worker": "present"}
    assert stop.stage == "canary" and _fics_in_entra(emulator) == {"github-deploy", "keyless-worker"}
    stop = estop_abort(actor=ADMIN)  # back to stopped: the FICs go again
    assert stop.stage == "stopped" and _fics_in_entra(emulator) == set()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="estop.").order_by("pk")][-2:] == [
        "estop.aborted", "estop.fics_deleted"]


def test_the_command(portal_on_emulator, capsys):
    with pytest.raises(CommandError, match="Say why"):
        call_command("emergency_stop", "on")
    call_command("emergency_stop", "on", "--reason", "web is down, key leaked")
    call_command("emergency_stop", "status")
    assert "on since" in capsys.readouterr().out and estop_current().tests_paused
    with pytest.raises(CommandError, match="already in force"):
        call_command("emergency_stop", "on", "--reason", "again")
    call_command("emergency_stop", "off")
    out = capsys.readouterr().out
    assert "stage 1" in out and "stage 3" in out and estop_current() is None
    assert AuditEvent.objects.get(action="estop.engaged").actor_label.startswith("manage.py emergency_stop")


@pytest.mark.real_worker
def test_a_real_worker_holds_a_queued_test_and_sends_no_request(start_worker, portal_on_emulator, fabrikam):
    """Another process (a real worker, its own cache) sees the stop: the queued test is held, the chain never runs."""
    import time

    from exchange.tasks import token_test_run

    emu = portal_on_emulator.emulator
    queue, process = start_worker(ENTRA_BASE_URL=emu.base_url, ENTRA_CA_BUNDLE=emu.ca_path, IMDS_URL=emu.imds_url)
    test = token_test_start(tenant=fabrikam, trigger="manual", actor=ADMIN)  # queued before the stop
    estop_engage(reason="leak drill", actor=ADMIN)
    portal_on_emulator.control.reset_requests()
    token_test_run.apply_async(args=[test.pk], queue=queue)
    deadline = time.monotonic() + 60
    while not test.error.get("held") and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.1)
        test.refresh_from_db()
    assert test.error["held"]["reason"] == "leak drill"
    assert (test.status, test.attempts, test.steps.count()) == ("queued", 0, 0)
    assert _token_requests(portal_on_emulator.control) == 0


def test_a_chain_halted_by_the_stop_is_held_with_no_attempt_spent(portal_on_emulator, fabrikam,
                                                                  django_capture_on_commit_callbacks):
    """The stop comes in between a worker's claim and the chain's next hop: the test goes back to the queue, held,
    its attempt not spent and no step or outcome recorded. (Set up as the two reads would meet it: the claim's
    cache read still says "off", the check before the hop already knows the stop.)"""
    import time

    from django.core.cache import cache

    from exchange.services import estop_guard, token_test_execute

    test = token_test_start(tenant=fabrikam, trigger="manual", actor=ADMIN)
    estop_engage(reason="mid-run", actor=ADMIN)
    stop = estop_current()
    cache.set(estop_guard.CACHE_KEY, estop_guard.OFF, 60)
    estop_guard._recent[:] = [time.monotonic() + 60, stop]
    execution = token_test_execute(test_id=test.pk)
    test.refresh_from_db()
    assert execution.status == "queued" and execution.retry_in is None
    assert (test.status, test.attempts, test.outcome, test.steps.count()) == ("queued", 0, "", 0)
    assert test.error["held"]["reason"] == "mid-run"


def test_the_page_walks_the_restart_over_http(portal_on_emulator, fabrikam, staff_clients,
                                              django_capture_on_commit_callbacks):
    admin = staff_clients["admin"]
    assert run_test(fabrikam, django_capture_on_commit_callbacks).outcome == "verified"
    admin.post(reverse("exchange:estop-engage"), {"reason": "drill", "confirm": "on", "delete_fics": "on"})
    page = admin.get(reverse("exchange:estop")).content.decode()
    assert "az ad app federated-credential create --id" in page and "Re-create keyless-worker by hand" in page
    refused = admin.post(reverse("exchange:estop-step", args=["tests"]), follow=True).content.decode()
    assert "Not at this point" in refused
    failed = admin.post(reverse("exchange:estop-step", args=["canary"]), {"canary": str(fabrikam.pk)},
                        follow=True).content.decode()
    assert "could not be re-created" in failed and EmergencyStop.objects.get().stage == "stopped"
    _recreate_by_hand(portal_on_emulator.emulator, EmergencyStop.objects.get().deleted_fics[0])
    admin.post(reverse("exchange:estop-step", args=["canary"]), {"canary": str(fabrikam.pk)})
    stop = EmergencyStop.objects.get()
    assert stop.stage == "canary" and stop.canary_test.tenant_id == fabrikam.pk
    fragment = admin.get(reverse("exchange:estop"), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and b'id="estop-canary"' in fragment.content and b"<html" not in fragment.content
    admin.post(reverse("exchange:estop-step", args=["abort"]))
    assert EmergencyStop.objects.get().stage == "stopped"
