"""Response headers Django's SecurityMiddleware does not set: a strict Content-Security-Policy (no inline script or
style anywhere: every script and stylesheet is a file under static/), a Permissions-Policy switching off the browser
features the portal never uses, and `Cache-Control: no-store` on every page served to a signed-in user."""
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.cache import add_never_cache_headers

# Features a page of ours never uses; only names Chromium knows (an unknown one is logged as a console error).
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer", "microphone", "midi",
    "payment", "usb"))


def content_security_policy() -> str:
    # data: images are Pico's icons (select arrows, the aria-busy spinner) drawn as inline SVG in its stylesheet.
    images = ["'self'", "data:"]
    logo = urlsplit(settings.PORTAL_BRAND_LOGO_URL)
    if logo.scheme in {"http", "https"} and logo.netloc:
        images.append(f"{logo.scheme}://{logo.netloc}")
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class SecurityHeadersMiddleware:
    """After AuthenticationMiddleware (it reads request.user)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "no-store" not in response.get("Cache-Control", ""):
            # Staff pages hold tenant data: never kept by the browser or a shared cache (the back button after
            # sign-out shows nothing).
            add_never_cache_headers(response)
        return response
