"""Sign-ins, sign-outs and (aggregated) failed sign-ins and lockouts go to the audit trail."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver

from portal import throttle
from portal.services import Actor, audit_record, audit_record_many, client_ip

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
    """Counted per account and address (portal.throttle); audited so that an attacker cannot grow the trail: the first
    failure of an existing account in a window, and each lock once, with its count. Refusals while locked: nothing."""
    if request is not None and getattr(request, "login_lock", None):
        return
    # credentials arrive with the password already masked by Django; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    ip = client_ip(request) if request else None
    failure = throttle.login_failure_count(username=username, ip=ip)
    known = (failure.first_of_account or failure.locks) and get_user_model()._default_manager.filter(
        **{get_user_model().USERNAME_FIELD: username}).exists()
    actor, entries = Actor.anonymous(ip), []
    if failure.first_of_account and known:
        entries.append({"action": "auth.login_failed", "target_type": "user", "detail": {"username": username}})
    for lock in failure.locks:
        if lock.scope == throttle.ACCOUNT and not known:
            continue  # a made-up name: counted and locked all the same, but not worth an event each
        entries.append({"action": "auth.login_locked", "target_type": "user" if lock.scope == throttle.ACCOUNT
                        else "address", "detail": {
            "scope": lock.scope, **({"username": username} if lock.scope == throttle.ACCOUNT else {"address": lock.value}),
            "failures": lock.failures, "window_seconds": settings.LOGIN_FAILURE_WINDOW_SECONDS,
            "until": lock.until.isoformat(timespec="seconds")}})
    audit_record_many([{**entry, "actor": actor, "ip": ip} for entry in entries])
