"""The password backend behind every sign-in form (the portal's and the Django admin's), refusing locked accounts
and addresses before the password is even checked (portal.throttle)."""
from django.contrib.auth.backends import ModelBackend, UserModel
from django.core.exceptions import PermissionDenied

from portal import throttle
from portal.services import client_ip


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if password is None:
            return None  # not a password sign-in: another backend's business
        username = username if username is not None else kwargs.get(UserModel.USERNAME_FIELD)
        lock = throttle.login_lock(username=username, ip=client_ip(request) if request else None)
        if lock:
            if request is not None:
                request.login_lock = lock  # the sign-in form shows why; the failure is neither counted nor audited
            raise PermissionDenied(lock.message)  # stops every other backend too
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            throttle.login_success(username=username)
        return user

