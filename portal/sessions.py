"""Staff sessions in the database whose idle expiry slides forward at most once a minute, not on every request.

Saving the session on every request (SESSION_SAVE_EVERY_REQUEST) cost each page view an UPDATE and a COMMIT, the
slowest of its queries on a busy database (bench/pages.py). The store remembers the expiry it read; `session_slide`
marks the session for saving once that expiry lags the idle timeout by more than SLIDE_SECONDS, so a session still
ends SESSION_COOKIE_AGE after its last request, give or take a minute."""
from datetime import timedelta

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

SLIDE_SECONDS = 60


class SessionStore(DatabaseSessionStore):
    expire_date = None  # as read from the database (None: a new session, or not read in this request)

    def _get_session_from_db(self):
        found = super()._get_session_from_db()
        self.expire_date = found.expire_date if found else None
        return found


def session_slide(get_response):
    """Middleware (right after SessionMiddleware): mark a read session modified when its expiry is due to slide."""
    def middleware(request):
        response = get_response(request)
        session = getattr(request, "session", None)
        expires = getattr(session, "expire_date", None)
        if expires is not None and session.accessed and not session.modified:
            due = timezone.now() + timedelta(seconds=session.get_expiry_age() - SLIDE_SECONDS)
            session.modified = expires < due
        return response
    return middleware
