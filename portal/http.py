"""Safe redirects: the one check every `next` parameter goes through before the portal redirects to it."""
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT = 2000


def safe_next(request, value, default: str, *args, **kwargs) -> str:
    """`value` if it is a URL on this site (same host; https when the request is), else `default` (a URL, or a URL
    name resolved with args/kwargs). Odd values (other hosts, `javascript:`, `//host`, `\\\\host`, control
    characters, very long ones) fall back to the default; nothing here raises."""
    return value if is_safe_next(request, value) else resolve_url(default, *args, **kwargs)


def is_safe_next(request, value) -> bool:
    # Our `next` values are paths from request.get_full_path() (or absolute URLs of this site): a relative one such
    # as "／／evil.example" (fullwidth slashes) is nothing we sent, so it is refused too.
    return (isinstance(value, str) and 0 < len(value) <= MAX_NEXT and value.startswith(("/", "http://", "https://"))
            and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()))
