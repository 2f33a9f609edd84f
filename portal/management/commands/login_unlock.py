"""manage.py login_unlock USER|IP: clear a sign-in lock (portal.throttle) before it ends by itself; audited."""
from django.core.management.base import BaseCommand, CommandError

from portal.services import Actor, login_unlock


class Command(BaseCommand):
    help = "Unlock a staff account (by username) or a client address locked after failed sign-ins."

    def add_arguments(self, parser):
        parser.add_argument("target", help="a username, an IP address, or an IPv6 /64 as the audit trail names it")

    def handle(self, *args, target, **options):
        try:
            locked = login_unlock(target=target, actor=Actor.system("manage.py"))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if locked:
            self.stdout.write(self.style.SUCCESS(f"Unlocked {target} ({' and '.join(locked)})."))
        else:
            self.stdout.write(f"{target} was not locked; its failed sign-ins are cleared.")
