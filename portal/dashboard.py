"""The dashboard's figures, gathered from the apps that own them."""
from exchange.selectors import health_overview


def dashboard_context() -> dict:
    health = health_overview()
    return {"health": health if health["tenants_total"] or health["recent_total"] else None}
