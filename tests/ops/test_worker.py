"""Deliveries in a real Celery worker process over the configured broker: a message delivered twice sends once."""
import time

import pytest

from ops import services
from ops.models import Alert, Delivery
from ops.tasks import delivery_send
from portal.services import Actor


@pytest.mark.real_worker
def test_a_duplicated_message_sends_one_mail(start_worker, smtp_server):
    channel, _ = services.channel_create(actor=Actor.system("t"), name="NOC", kind="email",
                                         addresses=["noc@mssp.example"])
    first, second = Alert.objects.bulk_create([Alert(kind="outage", dedupe_key=k, title=k, text="x")
                                               for k in ("first", "second")])
    d1, d2 = (Delivery.objects.create(alert=a, channel=channel, channel_kind="email") for a in (first, second))
    queue, process = start_worker(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                                  EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_server.port),
                                  EMAIL_USE_TLS="0")
    for pk in (d1.pk, d1.pk, d2.pk):  # the solo worker takes them in order: d2 sent = the duplicate was handled
        delivery_send.apply_async((pk,), queue=queue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if Delivery.objects.filter(pk=d2.pk, status="sent").exists():
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert [m["subject"].split("] ")[1] for m in smtp_server.messages] == ["first", "second"]

