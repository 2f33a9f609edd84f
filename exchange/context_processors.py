"""Exchange's part of every staff page: the outage banner (templates/exchange/_banner_outage.html) and the emergency
stop's (templates/exchange/_banner_estop.html), each read lazily — only when a page draws it."""
from django.utils.functional import SimpleLazyObject

from exchange.outages import outage_banner
from exchange.services.estop_guard import estop_current


def outages(request):
    """`outages`, read only when a page draws the banner (staff pages; never the public consent pages)."""
    return {"outages": SimpleLazyObject(outage_banner)}


def emergency_stop(request):
    """`estop`: the stop in force (who, when, why, stage) or None; read only when a page shows it (one cache read)."""
    return {"estop": SimpleLazyObject(estop_current)}
