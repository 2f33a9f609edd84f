"""The demo's wiring: sign staff in through the emulator's sign-in app (manage.py demo sends portal.signals'
demo_emulator_started)."""


def demo_environment(sender=None, *, info: dict, **kwargs) -> dict:
    signin = info.get("demo", {}).get("signin") or {}
    if not signin.get("app_id"):
        return {}
    return {"ENTRA_SIGNIN_CLIENT_ID": signin["app_id"], "ENTRA_SIGNIN_TENANT_ID": signin["tenant"],
            "ENTRA_SIGNIN_IDENTITY_CLIENT_ID": signin.get("web_identity_client_id") or ""}
