"""Authentication backends: local passwords under the break-glass policy, and sessions of directory sign-ins."""
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from portal.backends import ThrottledModelBackend
from portal.services import Actor, audit_record, client_ip


def is_break_glass(user) -> bool:
    """A break-glass account: a superuser named in BREAK_GLASS_USERS."""
    return bool(user.is_superuser and user.get_username() in settings.BREAK_GLASS_USERS)


def password_allowed(user) -> bool:
    return settings.PASSWORD_SIGNIN == "on" or is_break_glass(user)


class PasswordBackend(ThrottledModelBackend):
    """The throttled username + password check (portal.throttle: locked accounts and addresses are refused first),
    then the policy: with PASSWORD_SIGNIN=break-glass only break-glass accounts
    may use a password (the others sign in with Microsoft). Refusing after the password matched lets the audit trail
    say so: a correct password used where passwords are off is worth an auditor's attention."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None or password_allowed(user):
            return user
        audit_record(action="auth.password_refused", actor=Actor.anonymous(client_ip(request) if request else None),
                     target_type="user", target_id=str(user.pk),
                     detail={"username": user.get_username(), "reason": "password sign-in is reserved for "
                             "break-glass accounts (PASSWORD_SIGNIN=break-glass)"},
                     ip=client_ip(request) if request else None)
        raise PermissionDenied("Password sign-in is reserved for break-glass accounts.")


class DirectoryBackend(ModelBackend):
    """Holds the sessions of staff signed in through Entra ID (signin.services logs them in with this backend); it
    authenticates no credentials of its own."""

    def authenticate(self, request, **kwargs):
        return None
