"""The dashboard's figures, gathered from the apps that own them."""
from exchange.selectors import health_overview
from onboarding.selectors import tenant_health


def dashboard_context() -> dict:
    health = {**tenant_health(), **health_overview()}
    return {"health": health if health["tenants_total"] or health["recent_total"] else None}
