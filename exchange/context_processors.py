"""The emergency stop's banner on every staff page (templates/exchange/_banner_estop.html): `estop`, read lazily."""
from django.utils.functional import SimpleLazyObject

from exchange.services.estop_guard import estop_current


def emergency_stop(request):
    """`estop`: the stop in force (who, when, why, stage) or None; read only when a page shows it (one cache read)."""
    return {"estop": SimpleLazyObject(estop_current)}
