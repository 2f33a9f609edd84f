"""A client for the emulator's /_emulator/ control endpoints (tests, benchmarks, scripts)."""
import requests


class Control:
    def __init__(self, base_url: str, ca_path: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_path

    def _post(self, action: str, **data) -> dict:
        response = self.session.post(f"{self.base_url}/_emulator/{action}", json=data, timeout=10)
        response.raise_for_status()
        return response.json()

    def requests(self) -> dict:
        return self.session.get(f"{self.base_url}/_emulator/requests", timeout=10).json()

    def reset_requests(self) -> dict:
        return self._post("requests/reset")

    def reset(self) -> dict:
        return self._post("reset")

    def faults(self, **kinds) -> dict:
        """faults(token={"fail_next": 2, "fail_status": 503}, arm={"latency_ms": 20, "rate_429": 0.1})"""
        return self._post("faults", **kinds)

    def fail_next(self, kind: str, n: int = 1, *, status: int = 503, retry_after: float = 1,
                  tenant: str | None = None) -> dict:
        """The next `n` requests of `kind` (only those for `tenant`, if given) answer `status` with Retry-After."""
        key = f"{kind}:{tenant}" if tenant else kind
        return self._post("faults", **{key: {"fail_next": n, "fail_status": status, "retry_after": retry_after}})

    def clock(self, skew_seconds: float) -> dict:
        return self._post("clock", skew_seconds=skew_seconds)

    def fic_propagation(self, seconds: float) -> dict:
        return self._post("fic-propagation", seconds=seconds)

    def revoke_consent(self, *, tenant: str, app_id: str) -> dict:
        return self._post("consent/revoke", tenant=tenant, app_id=app_id)

    def remove_roles(self, *, tenant: str, app_id: str, **only) -> dict:
        """Remove the app's role assignments in the tenant (only those of `role=` / `scope=` if given)."""
        return self._post("roles/remove", tenant=tenant, app_id=app_id, **only)

    def add_role(self, *, tenant: str, app_id: str, role: str = "Reader", subscription_id: str | None = None,
                 scope: str | None = None) -> dict:
        """Assign `role` to the app's service principal on `scope`, on one subscription, or on each of the tenant's."""
        where = {"scope": scope} if scope else {"subscription_id": subscription_id} if subscription_id else {}
        return self._post("roles/add", tenant=tenant, app_id=app_id, role=role, **where)

    def disable_service_principal(self, *, tenant: str, app_id: str, on: bool = True) -> dict:
        """The customer disables the enterprise application: AADSTS500014."""
        return self._post("service-principals/disable", tenant=tenant, app_id=app_id, on=on)

    def block_by_conditional_access(self, *, tenant: str, app_id: str, on: bool = True) -> dict:
        """A Conditional Access policy of the customer blocks the app: AADSTS53003."""
        return self._post("conditional-access/block", tenant=tenant, app_id=app_id, on=on)

    def disable_app(self, *, app_id: str, disabled: bool = True) -> dict:
        return self._post("apps/disable", app_id=app_id, disabled=disabled)

    def add_redirect_uris(self, *, app_id: str, uris: list[str]) -> dict:
        return self._post("apps/redirect-uris", app_id=app_id, add=uris)

    def issuer_token(self, name: str, *, subject: str, audience: str = "api://AzureADTokenExchange") -> str:
        return self._post(f"issuers/{name}/token", subject=subject, audience=audience)["token"]

    # --- staff sign-in (emulator/signin.py) ---
    def set_app_roles(self, *, user: str, app_id: str, roles: list[str]) -> dict:
        """Assign exactly these app roles of `app_id` to a user (by UPN or object id): [] removes them all."""
        return self._post("signin/app-roles", user=user, app_id=app_id, roles=roles)

    def set_mfa(self, *, user: str, on: bool = True) -> dict:
        return self._post("signin/mfa", user=user, on=on)

    def spoil_next_id_token(self, **spoil) -> dict:
        """The next ID token gets `set` claims, loses `drop` claims, expires `exp_offset` seconds from now, or is
        signed with another key (`sign_with="oidc-1"`) while its header still names Entra's key."""
        return self._post("signin/id-token", **spoil)
    # The automation API's workload tokens (emulator/workload.py).
    def workload_issuer(self, name: str) -> str:
        """Register an external OIDC issuer served by the emulator itself; returns its issuer URL."""
        return self._post("workload/issuers", name=name)["issuer"]

    def workload_token(self, issuer: str, *, subject: str, audience: str, claims: dict | None = None,
                       kid: str = "oidc-1") -> str:
        return self._post(f"workload/issuers/{issuer}/token", subject=subject, audience=audience,
                          claims=claims or {}, kid=kid)["token"]

    def managed_identity_token(self, *, client_id: str, resource: str, version: str = "2.0",
                               claims: dict | None = None) -> str:
        return self._post("workload/managed-identity/token", client_id=client_id, resource=resource,
                          version=version, claims=claims or {})["token"]
