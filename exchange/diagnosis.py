"""Every failure of the chain in operator language: AADSTS/IMDS/ARM code → outcome, title, cause, fix, where to fix.

Codes and meanings are from ENTRA_FACTS.md (Token endpoint errors, IMDS, ARM). Branch on codes, never on texts.
"""
from dataclasses import dataclass

from exchange.models import TokenTest
from exchange.severity import Severity

# Where the fix happens; resolved to URLs by the views (`fix_url`).
CONSENT, INVENTORY, HOME_APP, TENANT, WORKER = "consent", "inventory", "home_app", "tenant", "worker"


@dataclass(frozen=True)
class Diagnosis:
    code: str
    outcome: str
    title: str
    cause: str
    fix: str
    fix_place: str = ""
    severity: Severity = Severity.ERROR
    customer_text: str = ""
    recognised: bool = True


_CUSTOMER_WAIT = ("We could not confirm access yet. Your service provider has been told what to fix; you don't need "
                  "to do anything now.")

_D = Diagnosis
CATALOGUE: dict[str, Diagnosis] = {d.code: d for d in [
    _D("verified", "verified", TokenTest.Outcome.VERIFIED.label,
       "The managed identity's token was exchanged for a token of the customer tenant and the ARM probe succeeded.",
       "Nothing to fix.", severity=Severity.OK, customer_text="Access verified. Thank you — your service provider can now "
       "reach your tenant with the role you granted, without any password or secret."),
    _D("no_role", "no_role", TokenTest.Outcome.NO_ROLE.label,
       "The app's service principal exists in the tenant (consent worked) but does not hold the access agreed with "
       "the customer (their access profile): the access check names each missing role and scope, or ARM refused "
       "with AuthorizationFailed.",
       "Send the customer's admin the role request on the tenant's page (a message, the az role assignment create "
       "commands, portal links), then test again.",
       TENANT, Severity.WARNING, "Consent worked, but no Azure role was granted yet: ask your contact at your service provider "
       "which role to assign to the app, and on which subscriptions."),
    _D("AADSTS700016", "not_consented", "Not consented in this tenant",
       "The app has no service principal in the customer tenant: the admin has not consented yet, consent was "
       "removed, or the tenant is not the one that consented.",
       "Send (or re-issue) the consent link to the customer's admin.", CONSENT,
       customer_text="Microsoft does not show the consent in your tenant yet. If you just consented, wait a minute "
       "and reload; otherwise ask your service provider for a new consent link."),
    _D("AADSTS70021", "misconfigured", "No federated credential matches",
       "No FIC on the home app matches the managed-identity token's issuer, subject and audience. A FIC created in "
       "the last few minutes can also give this while it propagates.",
       "Compare the app's FICs with the identity the workers use; create the missing FIC.", INVENTORY,
       customer_text=_CUSTOMER_WAIT),
    _D("propagating", "propagating", "New federated credential propagating",
       "AADSTS70021 shortly after a FIC was created: Entra takes a few minutes to accept a new FIC.",
       "Nothing to do: the test is retried automatically.", INVENTORY, Severity.WARNING,
       "Your consent was received. Microsoft is still activating our access; this page updates by itself."),
    _D("AADSTS700211", "misconfigured", "FIC issuer mismatch",
       "The FIC's issuer is not the issuer of the managed-identity token (https://{login host}/{tenant}/v2.0).",
       "Fix the issuer of the FIC (or create a correct one).", INVENTORY, customer_text=_CUSTOMER_WAIT),
    _D("AADSTS700212", "misconfigured", "FIC audience mismatch",
       "The FIC's audience is not the one the managed-identity token was requested for.",
       "Set the FIC audience to the cloud's exchange audience (api://AzureADTokenExchange).", INVENTORY,
       customer_text=_CUSTOMER_WAIT),
    _D("AADSTS700213", "misconfigured", "FIC subject mismatch",
       "The FIC's subject is not the managed identity's principal id (the comparison is case-sensitive).",
       "Set the subject to the identity's principal (object) id exactly.", INVENTORY, customer_text=_CUSTOMER_WAIT),
    _D("AADSTS700236", "misconfigured", "FIC on an app in another tenant",
       "The FIC sits on an app registered in a different tenant than the managed identity.",
       "Create the FIC on a multi-tenant app registered in the identity's own tenant.", HOME_APP,
       customer_text=_CUSTOMER_WAIT),
    _D("AADSTS700024", "misconfigured", "Assertion outside its validity window",
       "The managed-identity token was expired or not yet valid when presented — usually clock skew on the worker.",
       "Check the worker's clock (NTP); a fresh managed-identity token is fetched on the next test.", WORKER,
       customer_text=_CUSTOMER_WAIT),
    _D("AADSTS7000112", "misconfigured", "App disabled",
       "The home app (or its service principal) is disabled.", "Re-enable the app in the home tenant.", HOME_APP,
       customer_text=_CUSTOMER_WAIT),
    _D("AADSTS500014", "blocked", "Service principal disabled in the tenant",
       "The customer disabled the app's (or the resource's) service principal in their tenant.",
       "Ask the customer's admin to re-enable the enterprise application.", TENANT,
       customer_text="The app is disabled in your tenant: re-enable it under Enterprise applications, then reload."),
    _D("AADSTS500011", "error", "Resource not in the tenant",
       "The resource's service principal (e.g. Azure Resource Manager) is not present in the customer tenant.",
       "Check the tenant has an Azure subscription; check the probe's cloud.", TENANT,
       customer_text=_CUSTOMER_WAIT),
    _D("AADSTS90002", "tenant_not_found", "Tenant not found",
       "The tenant id does not exist in this cloud (or belongs to another national cloud).",
       "Check the tenant id and its cloud on the tenant page.", TENANT,
       customer_text="Microsoft could not find your tenant. Your service provider has been told."),
    _D("AADSTS53003", "blocked", "Blocked by Conditional Access",
       "A Conditional Access policy in the customer tenant blocks the app's sign-in.",
       "Ask the customer to exclude the app (workload identity) from the policy.", TENANT,
       customer_text="A Conditional Access policy in your tenant blocks our app: please exclude it from the policy."),
    _D("AADSTS90038", "misconfigured", "Cross-cloud request",
       "The managed identity and the customer tenant are in different national clouds; cross-cloud is not supported.",
       "Use a home app and managed identity in the customer's cloud.", HOME_APP, customer_text=_CUSTOMER_WAIT),
    _D("IMDS:identity_not_found", "misconfigured", "Managed identity not on this machine",
       "IMDS does not know the client id the workers use: the identity is not assigned to the worker VM.",
       "Assign the user-assigned identity to the worker VMs, or fix its client id in the portal.", WORKER,
       customer_text=_CUSTOMER_WAIT),
    _D("IMDS:arc", "misconfigured", "Azure Arc machine",
       "This worker runs on an Azure Arc-enabled machine: its only identity is system-assigned, and only "
       "user-assigned identities can be trusted by a federated credential.",
       "Run the workers on an Azure VM (or AKS with workload identity) with a user-assigned identity.", WORKER,
       customer_text=_CUSTOMER_WAIT),
    _D("no_identity", "misconfigured", "No managed identity in use",
       "No managed identity of the home app's tenant and cloud is marked as used by the workers.",
       "Register the workers' user-assigned identity and mark it in use.", INVENTORY, customer_text=_CUSTOMER_WAIT),
    _D("transient", "transient", "Microsoft's endpoints did not answer",
       "Every attempt met a timeout, a throttling (429) or a server error; retries ran out.",
       "Nothing to fix in the setup; the next test will try again.", severity=Severity.WARNING,
       customer_text="Microsoft's service did not answer in time. Please reload this page in a few minutes."),
    _D("infrastructure", "transient", "Our own infrastructure failed",
       "The test could not run because a part of the portal itself failed (its cache, database or code), not "
       "because of the tenant or Microsoft's endpoints.",
       "Check the workers' logs and the portal's Redis and database; the tenant needs nothing.", WORKER, Severity.WARNING,
       customer_text="We could not finish checking. Please reload this page in a few minutes."),
    _D("worker_lost", "transient", "The worker stopped during the test",
       "The test was running when its worker process died, and its retries ran out.",
       "Check the workers' health (memory, time limits); run the test again.", WORKER, Severity.WARNING,
       customer_text="We could not finish checking. Please reload this page in a few minutes."),
]}
for alias in ("AADSTS700222", "AADSTS700229", "AADSTS700226"):
    CATALOGUE[alias] = _D(alias, "misconfigured", "Wrong kind of assertion",
                          "An Entra token that is not an app-only managed-identity token was presented as assertion.",
                          "Make sure the workers present their user-assigned identity's token.", WORKER,
                          customer_text=_CUSTOMER_WAIT)
for alias in ("AADSTS700027", "AADSTS50027", "AADSTS50013"):
    CATALOGUE[alias] = _D(alias, "misconfigured", "Assertion signature or format invalid",
                          "The managed-identity token failed validation (signature, format).",
                          "Check that IMDS is genuine and the worker is in the identity's cloud.", WORKER,
                          customer_text=_CUSTOMER_WAIT)
CATALOGUE["AADSTS1000104"] = _D("AADSTS1000104", "misconfigured", "Cross-cloud request",
                                CATALOGUE["AADSTS90038"].cause, CATALOGUE["AADSTS90038"].fix, HOME_APP,
                                customer_text=_CUSTOMER_WAIT)
CATALOGUE["AuthorizationFailed"] = CATALOGUE["no_role"]
# The token request itself was malformed (a tenant id that is neither a GUID nor a domain, a missing parameter, a
# grant, a scope, no client assertion): the portal never sends such a request, so it means a bug or a mis-set option
# of ours — never the tenant's setup.
for alias in ("AADSTS900023", "AADSTS900144", "AADSTS70003", "AADSTS1002012", "AADSTS70011", "AADSTS7000216"):
    CATALOGUE[alias] = _D(alias, "error", "Malformed token request",
                          "Entra refused the shape of the portal's own token request (a malformed tenant id, a missing "
                          "parameter, an unsupported grant type, a scope without /.default, or no client assertion). "
                          "Nothing in the customer's tenant causes this.",
                          "Check the home app's ARM probe and audience settings, and the workers' version; the raw "
                          "error is kept on this run.", HOME_APP, customer_text=_CUSTOMER_WAIT)
CATALOGUE["InvalidAuthenticationTokenTenant"] = _D(
    "InvalidAuthenticationTokenTenant", "misconfigured", "ARM probe in another tenant",
    "The ARM probe names a subscription of another tenant than the one the token was issued for.",
    "Set the home app's ARM probe to a resource of the customer's tenant, or leave it empty to list subscriptions.",
    HOME_APP, customer_text=_CUSTOMER_WAIT)
CATALOGUE["SubscriptionNotFound"] = _D(
    "SubscriptionNotFound", "misconfigured", "ARM probe's subscription not found",
    "The subscription the ARM probe names does not exist (or was moved or deleted).",
    "Correct the home app's ARM probe, or leave it empty to list the subscriptions the app can see.", HOME_APP,
    customer_text=_CUSTOMER_WAIT)
CATALOGUE["ExpiredAuthenticationToken"] = _D(
    "ExpiredAuthenticationToken", "transient", "ARM found the token expired",
    "ARM refused the customer-tenant token as expired: the token was used past its lifetime, usually clock skew "
    "on the worker or a test that waited too long between hops.",
    "Check the worker's clock (NTP); the next test fetches a fresh token.", WORKER, Severity.WARNING,
    customer_text=CATALOGUE["transient"].customer_text)


def _outage(raw: dict) -> Diagnosis:
    """A test held through an outage longer than a sweep waits (exchange/breaker.py): the endpoint is named."""
    endpoint, minutes = raw.get("endpoint", "?"), raw.get("minutes", "?")
    return _D("outage", "transient", f"Outage: {endpoint} unavailable",
              f"Microsoft's {endpoint} endpoint ({raw.get('cloud', '?')} cloud) failed for many tenants at once and "
              f"stayed unavailable for {minutes} minutes (since {raw.get('since', '?')}); the test was held, not "
              "run, and finished when the outage outlasted SWEEP_OUTAGE_MAX_MINUTES. Not a fault of this tenant.",
              "Nothing to fix in the setup; the next test will try again.", severity=Severity.WARNING,
              customer_text=CATALOGUE["transient"].customer_text)


def diagnose_code(code: str, raw: dict | None = None) -> Diagnosis:
    if code == "outage":
        return _outage(raw or {})
    if code in CATALOGUE:
        return CATALOGUE[code]
    raw = raw or {}
    return Diagnosis(
        code or "unknown", "error", "Unrecognised error",
        f"The chain failed with an error this portal does not recognise: error={raw.get('error', '?')!s}, "
        f"codes={raw.get('error_codes', raw.get('code', '?'))!s}.",
        "Look the code up in Microsoft's AADSTS reference; the raw error is kept on this run.",
        customer_text=_CUSTOMER_WAIT, recognised=False,
    )


def _held_by_stop(held: dict) -> Diagnosis:
    """A test the emergency stop holds (exchange/services/estop_guard.py): not run, and nothing about its tenant."""
    return _D("emergency_stop", "", "Held by the emergency stop",
              f"An administrator ({held.get('by', '?')}) stopped every exchange at {held.get('since', '?')[:16]}: "
              f"“{held.get('reason', '')}”. This test was not run; nothing is wrong with this tenant and nothing is "
              "recorded against it.", "Nothing to do here: it runs when the emergency stop's restart resumes token "
              "tests (stage 2).", severity=Severity.INFO, customer_text=_CUSTOMER_WAIT)


def diagnose(test) -> Diagnosis | None:
    """The diagnosis of a finished (or propagating) token test, or of one the emergency stop holds."""
    held = None if test.finished else (test.error or {}).get("held")
    if isinstance(held, dict) and "estop" in held:
        return _held_by_stop(held)
    if not test.diagnosis_code:
        return None
    return diagnose_code(test.diagnosis_code, test.error)
