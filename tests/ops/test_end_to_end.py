"""End to end: consent revoked in the emulator → a token test → the watcher → one e-mail over SMTP and one signed
webhook; restored → one recovery notice; the same delivery sent twice sends once."""
from emulator import world as demo
from exchange import chain
from exchange.models import TokenTest
from exchange.services import token_test_start, token_tests_execute
from ops import services
from ops.models import Alert, Delivery
from ops.tasks import alerts_watch, delivery_send
from portal.services import Actor

ADMIN = Actor.system("test")


def _test_and_watch(tenant, capture):
    with capture(execute=True):
        token_test_start(tenant=tenant, trigger="manual", actor=ADMIN)
    with capture(execute=True):
        alerts_watch.delay()
    tenant.refresh_from_db()


def test_lost_access_and_restored(portal_on_emulator, make_tenant, smtp_server, webhook_receiver,
                                  django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    mail, _ = services.channel_create(actor=ADMIN, name="NOC mail", kind="email", addresses=["noc@mssp.example"])
    hook, secret = services.channel_create(actor=ADMIN, name="NOC hook", kind="webhook", url=webhook_receiver.url)
    webhook_receiver.secret = secret
    kinds = ["lost_access", "restored", "outage", "outage_over"]
    services.route_create(actor=ADMIN, channel=mail, kinds=kinds)
    services.route_create(actor=ADMIN, channel=hook, kinds=kinds)

    _test_and_watch(tenant, capture)
    assert tenant.last_outcome == "verified"
    assert smtp_server.messages == [] and webhook_receiver.received == []

    portal_on_emulator.control.revoke_consent(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    _test_and_watch(tenant, capture)
    assert tenant.last_outcome == "not_consented"
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["to"] == ["noc@mssp.example"] and "Access lost: customer" in message["subject"]
    assert demo.FABRIKAM in message["body"]
    assert len(webhook_receiver.received) == 1
    request = webhook_receiver.received[0]
    assert request["verified"] is True
    assert request["json"]["kind"] == "lost_access" and request["json"]["facts"]["tenant"] == demo.FABRIKAM

    # The watcher again, and the same deliveries' tasks again (a duplicated message): nothing more is sent.
    with capture(execute=True):
        alerts_watch.delay()
        for pk in Delivery.objects.values_list("pk", flat=True):
            delivery_send.delay(pk)
    assert len(smtp_server.messages) == 1 and len(webhook_receiver.received) == 1
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}

    portal_on_emulator.control.reset()  # the consent is back
    chain.reset_clients()  # MSAL replays an identical request's error for a few seconds: a fresh client
    _test_and_watch(tenant, capture)
    assert tenant.last_outcome == "verified"
    assert smtp_server.subjects("Access restored") and len(smtp_server.messages) == 2
    assert [r["json"]["kind"] for r in webhook_receiver.received] == ["lost_access", "restored"]
    assert all(r["verified"] for r in webhook_receiver.received)
    assert list(Alert.objects.filter(kind__in=kinds).values_list("kind", flat=True).order_by("pk")) == \
        ["lost_access", "restored"]


def test_an_outage_across_tenants_is_one_alert_and_one_recovery(portal_on_emulator, make_tenant, settings,
                                                                smtp_server, webhook_receiver,
                                                                django_capture_on_commit_callbacks):
    """Microsoft's token endpoint fails for every tenant (the emulator's fault): the circuit breaker opens, the tests
    are held; the watcher raises one outage alert (not one per tenant), then one notice when the endpoint is back."""
    capture = django_capture_on_commit_callbacks
    settings.BREAKER_MIN_FAILURES = 2
    tenants = [make_tenant(tenant_id=t, home_app=portal_on_emulator.app)
               for t in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    mail, _ = services.channel_create(actor=ADMIN, name="NOC mail", kind="email", addresses=["noc@mssp.example"])
    hook, webhook_receiver.secret = services.channel_create(actor=ADMIN, name="NOC hook", kind="webhook",
                                                            url=webhook_receiver.url, format="slack")
    services.route_create(actor=ADMIN, channel=mail, kinds=["lost_access", "outage", "outage_over"])
    services.route_create(actor=ADMIN, channel=hook, kinds=["lost_access", "outage", "outage_over"])
    with capture(execute=True):
        alerts_watch.delay()

    portal_on_emulator.control.faults(token={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})
    ids = [TokenTest.objects.create(tenant=t, trigger="sweep").pk for t in tenants]
    token_tests_execute(test_ids=ids)
    with capture(execute=True):
        alerts_watch.delay()
        alerts_watch.delay()
    assert [s.split("] ")[1] for s in smtp_server.subjects()] == ["Outage: home_token (global cloud)"]
    assert len(webhook_receiver.received) == 1 and webhook_receiver.received[0]["verified"]
    assert webhook_receiver.received[0]["json"]["text"].startswith("*Outage: home_token (global cloud)*")

    portal_on_emulator.control.faults(token={"fail_next": 0})  # the endpoint is back
    chain.reset_clients()
    due = max(TokenTest.objects.filter(pk__in=ids).values_list("not_before", flat=True))
    token_tests_execute(test_ids=ids, now=due)
    with capture(execute=True):
        alerts_watch.delay()
    assert [s.split("] ")[1] for s in smtp_server.subjects()] == ["Outage: home_token (global cloud)",
                                                                   "Outage over: home_token (global cloud)"]
    assert len(webhook_receiver.received) == 2
    assert not Alert.objects.filter(kind__in=["lost_access", "restored"]).exists()
