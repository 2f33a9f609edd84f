"""manage.py demo: the whole portal on embedded defaults — migrate, demo staff, emulator, worker, beat, web."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from exchange.demo import demo_environment, demo_seed
from exchange.models import Sweep
from exchange.services import fic_inventory_sync
from onboarding.consent import consent_callback_accept
from onboarding.models import Customer, CustomerTenant
from onboarding.services import consent_link_issue, customer_create, sweep_all_start, tenant_add, tenant_offboard
from portal.roles import ROLES
from portal.services import Actor, staff_user_create
from portal.signals import demo_emulator_started

DEMO_PASSWORD = "keyless-demo-2026"


class Command(BaseCommand):
    help = "Start the demo: migrations, demo staff users, the emulator, a Celery worker and beat, and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-emulator", action="store_true", help="use the Entra/IMDS settings from the environment")

    def handle(self, *args, addr, no_emulator, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self._demo_users()
        env = {**os.environ, "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"}
        children: list[subprocess.Popen] = []

        def stop(*_):
            for child in reversed(children):
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            if not no_emulator:
                env.update(self._start_emulator(children, env))
            py = sys.executable
            children.append(subprocess.Popen([py, "-m", "celery", "-A", "portal", "worker", "-l", "INFO",
                                              "--concurrency", "2"], env=env))
            children.append(subprocess.Popen([py, "-m", "celery", "-A", "portal", "beat", "-l", "INFO"], env=env))
            children.append(subprocess.Popen([py, "manage.py", "runserver", addr, "--noreload"], env=env))
            self.stdout.write(self.style.SUCCESS(f"\n  Portal:  http://{addr}/"))
            self.stdout.write(f"  Sign in: demo / {DEMO_PASSWORD}  (admin; also viewer, operator, auditor with the same "
                              "password)\n"
                              + ("           or Sign in with Microsoft: adele, omar, vera, audrey on the emulator's page\n"
                                 if env.get("ENTRA_SIGNIN_CLIENT_ID") else "")
                              + "  Try:     Customers → Add a customer → tenant northwind.example → issue the "
                              "consent link → open it → Accept\n  Stop:    Ctrl-C\n")
            while all(child.poll() is None for child in children):
                time.sleep(1)
            self.stderr.write("A demo process stopped; stopping the others.")
        except KeyboardInterrupt:
            pass
        stop()

    def _demo_users(self):
        User = get_user_model()
        for username, role in [("demo", "admin"), *((r, r) for r in ROLES)]:
            if not User.objects.filter(username=username).exists():
                staff_user_create(username=username, role=role, password=DEMO_PASSWORD)

    def _start_emulator(self, children, env) -> dict:
        """Start the emulator and return the environment that points the portal's clouds and IMDS at it."""
        state_dir = Path(settings.VAR_DIR) / "emulator"
        info_path = state_dir / "emulator.json"
        info_path.unlink(missing_ok=True)
        children.append(subprocess.Popen([sys.executable, "-m", "emulator", "--state-dir", str(state_dir)], env=env))
        deadline = time.monotonic() + 30
        while not info_path.exists():
            if time.monotonic() > deadline or children[-1].poll() is not None:
                raise SystemExit("The emulator did not start; see its output above.")
            time.sleep(0.2)
        info = json.loads(info_path.read_text())
        extra = demo_environment(info)
        for _receiver, more in demo_emulator_started.send(sender=self.__class__, info=info):
            extra.update(more or {})
        # This process talks to the emulator too (discovery, Graph): point its settings there.
        settings.ENTRA_BASE_URL, settings.ENTRA_CA_BUNDLE, settings.IMDS_URL = (
            extra["ENTRA_BASE_URL"], extra["ENTRA_CA_BUNDLE"], extra["IMDS_URL"])
        app, _identity = demo_seed(info)
        self._demo_customers(app)
        return extra

    def _demo_customers(self, app):
        """One customer in each state but the one you reach yourself: Fabrikam verified, Tailspin consented without
        the agreed role, Woodgrove failing (the portal recorded a consent Microsoft does not have: AADSTS700016),
        Adatum declined, Litware invited, Proseware a draft, Wingtip offboarded. Northwind is left for you to onboard
        through the consent flow."""
        actor = Actor.system("demo")
        fic_inventory_sync(app=app, actor=actor)
        if Customer.objects.exists():
            return
        tenants = {domain: tenant_add(customer=customer_create(name=name, actor=actor), domain_or_id=domain,
                                      home_app=app, actor=actor) for name, domain in DEMO_CUSTOMERS}
        consented = [tenants[d].pk for d in ("fabrikam.example", "tailspin.example", "woodgrove.example")]
        CustomerTenant.objects.filter(pk__in=consented).update(consent_received_at=timezone.now())
        consent_link_issue(tenant=tenants["litware.example"], actor=actor)
        _, url = consent_link_issue(tenant=tenants["adatum.example"], actor=actor)
        state = parse_qs(urlsplit(url).query)["state"][0]
        consent_callback_accept(query={"error": "access_denied", "state": state, "error_description":
                                       "AADSTS65004: User declined to consent to access the app."}, ip="127.0.0.1")
        tenant_offboard(tenant=tenants["wingtip.example"], actor=actor)
        sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=actor)


DEMO_CUSTOMERS = [("Fabrikam", "fabrikam.example"), ("Tailspin Toys", "tailspin.example"),
                  ("Woodgrove Bank", "woodgrove.example"), ("Adatum Corporation", "adatum.example"),
                  ("Litware", "litware.example"), ("Proseware", "proseware.example"), ("Wingtip Toys", "wingtip.example")]
