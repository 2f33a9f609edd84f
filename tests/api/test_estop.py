"""The API while the emergency stop is on: token-test starts and sweeps are refused with a problem naming it."""
from exchange.models import Sweep, TokenTest
from exchange.services.estop import estop_engage
from portal.services import Actor


def test_token_tests_and_sweeps_refused_while_stopped(api_world, make_tenant):
    tenant = make_tenant()
    api = api_world.login("operator")
    estop_engage(reason="credential leak drill", actor=Actor.system("admin"))
    started = api.post(f"/tenants/{tenant.pk}/token-tests")
    assert started.status_code == 409 and started.json()["type"].endswith("emergency-stop")
    assert "credential leak drill" in started.json()["detail"]
    swept = api.post("/sweeps")
    assert swept.status_code == 409 and swept.json()["type"].endswith("emergency-stop")
    assert not TokenTest.objects.exists() and not Sweep.objects.exists()
