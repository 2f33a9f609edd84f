"""manage.py emergency_stop on|off|status: the emergency stop for when the web is down (exchange.services.estop)."""
import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from exchange.models import EmergencyStop
from exchange.services import estop
from exchange.services.estop_guard import EmergencyStopped
from portal.services import Actor


class Command(BaseCommand):
    help = ("Engage the emergency stop (on --reason TEXT [--delete-fics]), run its whole restart (off: re-create the "
            "deleted FICs, resume token tests, resume sweeps; no canary test), or show it (status).")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="why (required with on): shown on every staff page")
        parser.add_argument("--delete-fics", action="store_true",
                            help="with on: also delete every FIC of the home apps through Graph")

    def handle(self, *args, action, reason, delete_fics, **options):
        actor = Actor.system(f"manage.py emergency_stop ({getpass.getuser()})")
        try:
            if action == "on":
                self._print(estop.estop_engage(reason=reason, actor=actor, delete_fics=delete_fics))
            elif action == "off":
                self._restart(actor)
            else:
                self._print(EmergencyStop.objects.filter(current=True).first())
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except EmergencyStopped as exc:
            raise CommandError(str(exc)) from exc

    def _restart(self, actor):
        """Each stage from where the stop is, stopping at the first that fails (all audited)."""
        stop = EmergencyStop.objects.filter(current=True).first()
        if stop is None:
            raise CommandError("No emergency stop is in force.")
        if stop.stage == EmergencyStop.Stage.STOPPED:
            stop = estop.estop_restart_canary(actor=actor)
            self.stdout.write(f"stage 1: {stop.history[-1]['summary']}")
            if stop.stage != EmergencyStop.Stage.CANARY:
                for record in stop.deleted_fics:
                    self.stdout.write(f"  re-create {record['name']} by hand: {record.get('by_hand', '')}")
                raise CommandError("Stage 1 failed: the stop stays in force. Re-create the FICs by hand "
                                   "(above), then run off again.")
        if stop.stage == EmergencyStop.Stage.CANARY:
            stop = estop.estop_restart_tests(actor=actor)
            self.stdout.write(f"stage 2: {stop.history[-1]['summary']}")
        stop = estop.estop_restart_sweeps(actor=actor)
        self.stdout.write(f"stage 3: {stop.history[-1]['summary']}")

    def _print(self, stop):
        if stop is None:
            self.stdout.write("off: no emergency stop is in force.")
            return
        self.stdout.write(f"on since {stop.engaged_at:%Y-%m-%d %H:%M} UTC, by {stop.engaged_by_label}: {stop.reason}")
        self.stdout.write(f"stage: {stop.get_stage_display()}")
        for record in stop.deleted_fics:
            state = "deleted" if record.get("deleted") else f"not deleted ({record.get('error', '')})"
            self.stdout.write(f"  FIC {record['app_name']}/{record['name']}: {state}")
