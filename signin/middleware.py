"""Staff sessions end SIGNIN_SESSION_MAX_AGE_SECONDS after their sign-in, however active: the next sign-in re-reads
the user's roles from the directory."""
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse

from portal.services import Actor, audit_record, client_ip
from signin.receivers import SIGNED_IN_AT


def session_max_age(get_response):
    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SIGNED_IN_AT)
            if started is None:  # a session from before this policy: its age counts from now
                request.session[SIGNED_IN_AT] = time.time()
            elif time.time() - float(started) > settings.SIGNIN_SESSION_MAX_AGE_SECONDS:
                audit_record(action="auth.session_expired", actor=Actor.staff(user), target_type="user",
                             target_id=str(user.pk), detail={"max_age_seconds": settings.SIGNIN_SESSION_MAX_AGE_SECONDS},
                             ip=client_ip(request))
                logout(request)
                messages.info(request, "Your session reached its maximum age: sign in again.")
                response = redirect_to_login(request.get_full_path())
                if request.headers.get("HX-Request"):  # htmx swaps fragments: make it load the sign-in page
                    location, response = response["Location"], HttpResponse(status=204)
                    response["HX-Redirect"] = location
                return response
        return get_response(request)

    return middleware
