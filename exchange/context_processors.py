"""Exchange's part of every staff page: the outage banner (templates/exchange/_banner_outage.html)."""
from django.utils.functional import SimpleLazyObject

from exchange.outages import outage_banner


def outages(request):
    """`outages`, read only when a page draws the banner (staff pages; never the public consent pages)."""
    return {"outages": SimpleLazyObject(outage_banner)}
