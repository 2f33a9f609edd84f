"""The demo's wiring: point the portal at a running emulator and register its home app and managed identity."""
from portal.services import Actor


def demo_environment(info: dict) -> dict:
    """Environment variables that send every Microsoft call of the web, worker and beat processes to the emulator."""
    return {"ENTRA_BASE_URL": info["base_url"], "ENTRA_CA_BUNDLE": info["ca_path"], "IMDS_URL": info["imds_url"]}


def demo_seed(info: dict):
    """Register the emulator's demo home app and managed identity once (idempotent). Returns (app, identity)."""
    from exchange.models import HomeApp, ManagedIdentity
    from exchange.services import home_app_create, managed_identity_create

    demo = info["demo"]
    actor = Actor.system("demo")
    app = HomeApp.objects.filter(client_id=demo["app"]["app_id"]).first() or home_app_create(
        actor=actor, name=demo["app"].get("display_name", "Keyless access"), client_id=demo["app"]["app_id"],
        object_id=demo["app"].get("object_id"), home_tenant_id=demo["home_tenant"]["id"], cloud="global")
    mi = demo["managed_identity"]
    identity = ManagedIdentity.objects.filter(client_id=mi["client_id"]).first() or managed_identity_create(
        actor=actor, name=mi.get("name", "worker identity"), client_id=mi["client_id"],
        principal_id=mi["principal_id"], tenant_id=demo["home_tenant"]["id"], resource_id=mi.get("resource_id", ""))
    return app, identity
