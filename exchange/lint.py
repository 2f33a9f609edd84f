"""The FIC lint: what Entra accepts silently and an exchange discovers too late (ENTRA_FACTS: the FIC that trusts it).

Pure functions over the inventory; each finding says how bad it is, what is wrong and how to fix it.
"""
from exchange.clouds import CLOUDS
from exchange.fic_rules import ERROR, INFO, MAX_FICS, WARNING, Finding, Severity, lint_fic

__all__ = ["ERROR", "INFO", "WARNING", "Finding", "Severity", "lint_app", "lint_fic", "redirect_registered", "worst",
           "workers_identity"]


GRAPH_UNTRUSTED_CODES = ("AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213")
MULTI_TENANT_AUDIENCES = ("AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount")
NEAR_LIMIT = 2  # FICs below MAX_FICS from which the app is "close to the limit"


def _graph_error(app, live, identities, redirect_uri):
    error = app.graph_error
    if not error:
        return
    code = error.get("code", "")
    if code == "Authorization_RequestDenied" or error.get("status") == 403:
        yield Finding("graph_forbidden", ERROR, "Graph refused to read the app: the app lacks Application.Read.All "
                      "(or Application.ReadWrite.OwnedBy as an owner of itself).",
                      "Grant the Graph application permission Application.Read.All (admin consent in the home "
                      "tenant), then sync again.")
    elif code in GRAPH_UNTRUSTED_CODES:
        workers = workers_identity(app, identities)
        yield Finding("identity_untrusted", ERROR, f"{_untrusted(workers)} Graph refused its token ({code}), so the "
                      "portal cannot read the app or create the FIC itself.",
                      "Create the FIC in the Entra admin center (App registrations → the app → Certificates & "
                      "secrets → Federated credentials → Managed identity), then sync again.",
                      identity_id=workers.pk if workers else None)
    elif code == "Request_ResourceNotFound" or error.get("status") == 404:
        yield Finding("graph_not_found", ERROR, f"Graph has no app with client id {app.client_id} in tenant "
                      f"{app.home_tenant_id}.", "Check the client id and home tenant.")
    else:
        yield Finding("graph_error", ERROR, f"The last sync failed: {code} {error.get('message', '')}".strip(),
                      "Fix it, then sync again.")


def _never_synced(app, live, identities, redirect_uri):
    if app.graph_synced_at is None and not app.graph_error:
        yield Finding("never_synced", INFO, "The app has not been read from Graph yet.", "Press Sync now.")


def _single_tenant(app, live, identities, redirect_uri):
    if app.graph_synced_at and app.sign_in_audience not in MULTI_TENANT_AUDIENCES:
        yield Finding("single_tenant", ERROR, f"The app's sign-in audience is {app.sign_in_audience or '?'}: "
                      "customers cannot consent to a single-tenant app.",
                      "Set 'Supported account types' to multiple organisations.")


def redirect_registered(app, redirect_uri: str) -> bool | None:
    """Whether `redirect_uri` is among the app's redirect URIs: None while the app was never read from Graph."""
    if app.graph_synced_at is None:
        return None
    return redirect_uri in (app.redirect_uris or [])


def _redirect_uri(app, live, identities, redirect_uri):
    if redirect_registered(app, redirect_uri) is False:
        yield Finding("redirect_uri", ERROR, f"The consent callback {redirect_uri} is not among the app's redirect "
                      "URIs: Entra refuses consent with AADSTS50011.", "Add it as a Web redirect URI of the app.")


def _fic_limit(app, live, identities, redirect_uri):
    if len(live) >= MAX_FICS:
        yield Finding("fic_limit", ERROR, f"{len(live)} FICs: the app is at Entra's limit of {MAX_FICS}.",
                      "Delete FICs that are no longer used.")
    elif len(live) >= MAX_FICS - NEAR_LIMIT:
        yield Finding("fic_near_limit", WARNING, f"{len(live)} FICs: close to Entra's limit of {MAX_FICS}.",
                      "Delete FICs that are no longer used.")


def workers_identity(app, identities):
    """The identity the workers of `app` present: the first registered (oldest) identity in use of the app's home
    tenant and cloud. The one rule: exchange.selectors.worker_identity reads the same from the database."""
    candidates = [i for i in identities if i.in_use and i.cloud == app.cloud
                  and str(i.tenant_id) == str(app.home_tenant_id)]
    return min(candidates, key=lambda i: (i.created_at, i.pk or 0), default=None)


def _untrusted(identity) -> str:
    """The one wording of "the workers cannot exchange", shown on the card and the dashboard alike."""
    who = f"{identity.name}, the identity the workers use" if identity else "the identity the workers use"
    return f"No FIC trusts {who}: every exchange will fail with AADSTS70021."


def _trusts(app, fic, identity) -> bool:
    return (fic.subject == str(identity.principal_id) and fic.issuer == CLOUDS[app.cloud].issuer(str(identity.tenant_id))
            and list(fic.audiences) == [app.exchange_audience])


def _identity_untrusted(app, live, identities, redirect_uri):
    if not app.graph_synced_at:
        return
    workers = workers_identity(app, identities)
    graph_said_so = (app.graph_error or {}).get("code") in GRAPH_UNTRUSTED_CODES  # _graph_error's finding says it
    for identity in identities:
        if not identity.in_use or identity.cloud != app.cloud or str(identity.tenant_id) != str(app.home_tenant_id):
            continue
        if any(_trusts(app, f, identity) for f in live):
            continue
        if identity == workers and not graph_said_so:
            yield Finding("identity_untrusted", ERROR, _untrusted(identity), "Create the FIC for it.",
                          action="create_fic", identity_id=identity.pk)
        elif identity != workers:
            yield Finding("spare_identity_untrusted", WARNING, f"{identity.name} is marked as used by the workers, "
                          f"but they present {workers.name} (the first registered identity in use); no FIC trusts "
                          f"{identity.name}.", "Create its FIC before the workers switch to it, or mark it not used.",
                          action="create_fic", identity_id=identity.pk)


# The rules of an app, in the order their findings are shown.
APP_RULES = (_graph_error, _never_synced, _single_tenant, _redirect_uri, _fic_limit, _identity_untrusted)


def lint_app(app, *, fics, identities, portal_redirect_uri: str, discovery=None) -> tuple[list[Finding], dict]:
    """App-level findings first, then per-FIC ones (keyed by FIC pk)."""
    live = [f for f in fics if f.removed_at is None]
    findings = [finding for rule in APP_RULES for finding in rule(app, live, identities, portal_redirect_uri)]
    per_fic = {f.pk: lint_fic(f, app=app, identities=identities, siblings=live, discovery=discovery) for f in live}
    return findings, per_fic


def worst(findings) -> str:
    severities = {f.severity for f in findings}
    return ERROR if ERROR in severities else WARNING if WARNING in severities else Severity.OK
