"""Every sign-in stamps its session with the time (signin.middleware ends it at the maximum age); a break-glass
account's password sign-in is audited as such."""
import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from portal.services import Actor, audit_record, client_ip
from signin.backends import PasswordBackend, is_break_glass

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
