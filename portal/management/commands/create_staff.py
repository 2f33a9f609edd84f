"""manage.py create_staff USERNAME --role ROLE: a staff account with one role."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.roles import ROLES
from portal.services import staff_user_create


class Command(BaseCommand):
    help = "Create a staff user with a role (viewer, operator, admin, auditor)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-env", default="",
                            help="read the password from this environment variable (else one is generated and printed)")
        parser.add_argument("--if-missing", action="store_true", help="do nothing if the user already exists")

    def handle(self, *args, username, role, email, password_env, if_missing, **options):
        if get_user_model().objects.filter(username=username).exists():
            if if_missing:
                self.stdout.write(f"{username} already exists; left as it is.")
                return
            raise CommandError(f"A user named {username!r} already exists.")
        password = os.environ.get(password_env, "") if password_env else ""
        generated = not password
        password = password or secrets.token_urlsafe(12)
        try:
            staff_user_create(username=username, role=role, password=password, email=email)
        except (ValidationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {username} ({role})."))
        if generated:
            self.stdout.write(f"Password: {password}")
