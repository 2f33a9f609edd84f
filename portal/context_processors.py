"""The MSSP's brand on every page: its name, logo and contact address, from settings (PORTAL_BRAND_*)."""
from django.conf import settings


def branding(request):
    """`branding.name`, `branding.logo_url` and `branding.contact_email` (the last two may be empty) in every template.

    Named `branding`, not `brand`, so that no view's own context variable can shadow it."""
    return {"branding": {"name": settings.PORTAL_BRAND_NAME, "logo_url": settings.PORTAL_BRAND_LOGO_URL,
                         "contact_email": settings.PORTAL_CONTACT_EMAIL}}
