"""Sign-ins, sign-outs and failed sign-ins go to the audit trail."""
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver

from portal.services import Actor, audit_record, client_ip

# Sent by `manage.py demo` once the emulator runs (kwarg `info`: its emulator.json); receivers in apps above portal
# return extra environment variables for the demo's processes (signin: the emulator's sign-in app).
demo_emulator_started = Signal()


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(action="auth.login", actor=Actor.staff(user), target_type="user", target_id=str(user.pk),
                 ip=client_ip(request))


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    audit_record(action="auth.logout", actor=Actor.staff(user), target_type="user", target_id=str(user.pk),
                 ip=client_ip(request))


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # credentials arrive with the password already masked by Django; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(action="auth.login_failed", actor=Actor.anonymous(client_ip(request) if request else None),
                 target_type="user", detail={"username": username},
                 ip=client_ip(request) if request else None)
