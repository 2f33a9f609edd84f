"""Every sign-in stamps its session with the time (signin.middleware ends it at the maximum age); a break-glass
account's password sign-in is audited as such; staff actors carry their directory identity; the demo's emulator
describes signin's settings."""
import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from portal.services import STAFF_ACTOR_ENRICHERS, Actor, audit_record, client_ip
from portal.signals import demo_emulator_started
from signin.backends import PasswordBackend, is_break_glass
from signin.demo import demo_environment
from signin.selectors import directory_actor

SIGNED_IN_AT = "signin_at"
PASSWORD_BACKEND = f"{PasswordBackend.__module__}.{PasswordBackend.__qualname__}"


@receiver(user_logged_in, dispatch_uid="signin-logged-in")
def _logged_in(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None:
        session[SIGNED_IN_AT] = time.time()
    if getattr(user, "backend", "") == PASSWORD_BACKEND and is_break_glass(user):
        audit_record(action="auth.break_glass_login", actor=Actor.staff(user), target_type="user",
                     target_id=str(user.pk), detail={"username": user.get_username(), "method": "password"},
                     ip=client_ip(request))


def connect() -> None:
    """Called once from SigninConfig.ready()."""
    if directory_actor not in STAFF_ACTOR_ENRICHERS:
        STAFF_ACTOR_ENRICHERS.append(directory_actor)
    demo_emulator_started.connect(demo_environment, dispatch_uid="signin-demo")
