"""The FIC lint: what Entra accepts silently and an exchange discovers too late (ENTRA_FACTS: the FIC that trusts it).

Pure functions over the inventory; each finding says how bad it is, what is wrong and how to fix it.
"""
import re
import uuid
from dataclasses import dataclass

from exchange.clouds import CLOUDS

ERROR, WARNING, INFO = "error", "warning", "info"
FIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")
MAX_FICS = 20
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_SUBJECT = re.compile(r"^repo:[^/\s:]+/[^/\s:]+:(ref:refs/(heads|tags)/\S+|environment:\S+|pull_request)$")
K8S_SUBJECT = re.compile(r"^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    fix: str
    fic_id: int | None = None
    action: str = ""  # "create_fic" when the portal can fix it itself
    identity_id: int | None = None


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value  # lower-case canonical form, as Entra gives principal ids
    except ValueError:
        return False


def entra_issuer_tenant(issuer: str) -> tuple[str, str] | None:
    """(cloud key, tenant) when the issuer is an Entra v2 issuer of a known cloud."""
    for key, cloud in CLOUDS.items():
        match = re.fullmatch(rf"https://{re.escape(cloud.login_host)}/([^/]+)/v2\.0", issuer)
        if match:
            return key, match.group(1)
    return None


def lint_fic(fic, *, app, identities, siblings, discovery=None) -> list[Finding]:
    """Findings for one FIC. `identities`: the known managed identities; `siblings`: the app's other FICs;
    `discovery(issuer) -> str | None`: fetches an external issuer's discovery document, returns a problem or None."""
    found: list[Finding] = []
    cloud = CLOUDS[app.cloud]

    def add(code, severity, message, fix, action=""):
        found.append(Finding(code, severity, message, fix, fic.pk, action))

    if not FIC_NAME.match(fic.name or ""):
        add("name", ERROR, f"Name “{fic.name}” breaks Entra's rules (3-120 letters, digits, - or _, starting with a "
            "letter or digit).", "Create a FIC with a valid name and delete this one (names are immutable).")
    issuer = fic.issuer or ""
    if issuer != issuer.strip() or re.search(r"\s", issuer):
        add("issuer_whitespace", ERROR, "The issuer contains whitespace: it can never match a token's iss.",
            "Recreate the FIC with the issuer exactly as the token has it.")
    entra = entra_issuer_tenant(issuer.strip())
    looks_entra = any(c.login_host in issuer for c in CLOUDS.values()) or "sts.windows.net" in issuer
    if looks_entra and entra is None:
        add("issuer_format", ERROR, f"Issuer “{issuer}” is not of the form {cloud.issuer('{tenant id}')} "
            "(no trailing slash, v2.0, the tenant id).", f"Use {cloud.issuer('<identity tenant id>')}.")
    audiences = list(fic.audiences or [])
    if len(audiences) != 1:
        add("audience_count", ERROR, f"A FIC takes exactly one audience; this one has {len(audiences)}.",
            f"Use the single audience {cloud.exchange_audience}.")
    elif entra and audiences[0] != cloud.exchange_audience:
        if audiences[0] == app.mi_audience and audiences[0]:
            add("audience_custom", WARNING, f"Custom audience “{audiences[0]}” (an older setup's Application ID "
                "URI). It works because the workers request their token for it, but new FICs should use "
                f"{cloud.exchange_audience}.", f"Move to {cloud.exchange_audience} when convenient.")
        else:
            add("audience", ERROR, f"Audience “{audiences[0]}” is not {cloud.name}'s exchange audience "
                f"{cloud.exchange_audience}: exchanges fail with AADSTS700212/70021.",
                f"Recreate the FIC with the audience {cloud.exchange_audience}.")
    subject = fic.subject or ""
    if entra:
        if entra[0] != app.cloud:
            add("issuer_cloud", ERROR, f"The issuer is in {CLOUDS[entra[0]].name} but the app in {cloud.name}: "
                "cross-cloud federation is not supported.", "Use an identity and app in the same cloud.")
        if not _is_guid(subject):
            matching_ci = next((i for i in identities if str(i.principal_id) == subject.lower()), None)
            if matching_ci:
                add("subject_case", ERROR, f"Subject matches {matching_ci.name}'s principal id only ignoring case: "
                    "Entra compares subjects case-sensitively (AADSTS700213).",
                    f"Recreate the FIC with the subject {matching_ci.principal_id} (lower case).")
            else:
                add("subject_guid", ERROR, "The subject of a managed-identity FIC must be the identity's principal "
                    "(object) id, a GUID.", "Set the subject to the identity's principal id.")
        else:
            identity = next((i for i in identities if str(i.principal_id) == subject), None)
            if identity is None:
                add("subject_unknown", ERROR, f"Subject {subject} is not the principal id of any managed identity "
                    "registered here. Whoever holds that identity can act in every customer tenant that consented "
                    "to this app.", "Delete this FIC unless you know and own that identity (then register it).")
            elif str(identity.tenant_id) != entra[1].lower():
                add("issuer_tenant", ERROR, f"The issuer names tenant {entra[1]} but {identity.name} lives in "
                    f"{identity.tenant_id}: exchanges fail with AADSTS700211.",
                    f"Use the issuer {CLOUDS[identity.cloud].issuer(str(identity.tenant_id))}.")
    elif not looks_entra and issuer:
        if issuer.rstrip("/") == GITHUB_ISSUER:
            if not GITHUB_SUBJECT.match(subject):
                add("github_subject", ERROR, f"“{subject}” is not a GitHub Actions subject "
                    "(repo:ORG/REPO:ref:refs/heads/BRANCH, :environment:NAME, :pull_request).",
                    "Use the subject GitHub puts in its token for the workflow.")
        elif subject.startswith("system:serviceaccount:") or "kubernetes" in issuer or "oidc.eks" in issuer:
            if not K8S_SUBJECT.match(subject):
                add("k8s_subject", ERROR, f"“{subject}” is not a Kubernetes service-account subject "
                    "(system:serviceaccount:NAMESPACE:NAME).", "Use system:serviceaccount:<namespace>:<name>.")
        if not issuer.startswith("https://"):
            add("issuer_https", ERROR, "An external issuer must be an https URL serving "
                "/.well-known/openid-configuration.", "Use the provider's https issuer URL.")
        elif discovery is not None:
            problem = discovery(issuer)
            if problem:
                add("issuer_discovery", WARNING, f"The issuer's discovery document did not check out: {problem}",
                    "Check the issuer URL; Entra fetches its keys from there.")
    key = (issuer, subject)
    if any((s.issuer, s.subject) == key for s in siblings if s.pk != fic.pk):
        add("duplicate", ERROR, "Another FIC of this app has the same issuer and subject (Graph refuses this; "
            "the inventory found both).", "Delete one of them.")
    return found


def lint_app(app, *, fics, identities, portal_redirect_uri: str, discovery=None) -> tuple[list[Finding], dict]:
    """App-level findings first, then per-FIC ones (keyed by FIC pk)."""
    cloud = CLOUDS[app.cloud]
    findings: list[Finding] = []
    if app.graph_error:
        code = app.graph_error.get("code", "")
        if code == "Authorization_RequestDenied" or app.graph_error.get("status") == 403:
            findings.append(Finding("graph_forbidden", ERROR, "Graph refused to read the app: the app lacks "
                                    "Application.Read.All (or Application.ReadWrite.OwnedBy as an owner of itself).",
                                    "Grant the Graph application permission Application.Read.All (admin consent in "
                                    "the home tenant), then sync again."))
        elif code in ("AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213"):
            findings.append(Finding("identity_untrusted", ERROR, "The workers' identity has no working FIC on the app "
                                    f"({code}): the portal cannot read Graph with it, and every exchange will fail "
                                    "with AADSTS70021.", "Create the FIC in the Entra admin center (App registrations "
                                    "→ the app → Certificates & secrets → Federated credentials → Managed identity) "
                                    "for the identity the workers use, then sync again."))
        elif code == "Request_ResourceNotFound" or app.graph_error.get("status") == 404:
            findings.append(Finding("graph_not_found", ERROR, f"Graph has no app with client id {app.client_id} in "
                                    f"tenant {app.home_tenant_id}.", "Check the client id and home tenant."))
        else:
            findings.append(Finding("graph_error", ERROR, f"The last sync failed: {code} "
                                    f"{app.graph_error.get('message', '')}".strip(), "Fix it, then sync again."))
    if app.graph_synced_at is None and not app.graph_error:
        findings.append(Finding("never_synced", INFO, "The app has not been read from Graph yet.", "Press Sync now."))
    if app.graph_synced_at and app.sign_in_audience not in ("AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"):
        findings.append(Finding("single_tenant", ERROR, f"The app's sign-in audience is {app.sign_in_audience or '?'}: "
                                "customers cannot consent to a single-tenant app.",
                                "Set 'Supported account types' to multiple organisations."))
    if app.graph_synced_at and portal_redirect_uri not in (app.redirect_uris or []):
        findings.append(Finding("redirect_uri", ERROR, f"The consent callback {portal_redirect_uri} is not among the "
                                "app's redirect URIs: Entra refuses consent with AADSTS50011.",
                                "Add it as a Web redirect URI of the app."))
    live = [f for f in fics if f.removed_at is None]
    if len(live) >= MAX_FICS:
        findings.append(Finding("fic_limit", ERROR, f"{len(live)} FICs: the app is at Entra's limit of 20.",
                                "Delete FICs that are no longer used."))
    elif len(live) >= MAX_FICS - 2:
        findings.append(Finding("fic_near_limit", WARNING, f"{len(live)} FICs: close to Entra's limit of 20.",
                                "Delete FICs that are no longer used."))
    for identity in identities:
        if not identity.in_use or identity.cloud != app.cloud or str(identity.tenant_id) != str(app.home_tenant_id):
            continue
        trusted = any(f.subject == str(identity.principal_id) and f.issuer == cloud.issuer(str(identity.tenant_id))
                      and list(f.audiences) == [app.exchange_audience] for f in live)
        if not trusted and app.graph_synced_at:
            findings.append(Finding("identity_untrusted", ERROR, f"No FIC trusts {identity.name}, the identity the "
                                    "workers use: every exchange will fail with AADSTS70021.",
                                    "Create the FIC for it.", action="create_fic", identity_id=identity.pk))
    per_fic = {f.pk: lint_fic(f, app=app, identities=identities, siblings=live, discovery=discovery) for f in live}
    return findings, per_fic


def worst(findings) -> str:
    severities = {f.severity for f in findings}
    return ERROR if ERROR in severities else WARNING if WARNING in severities else "ok"
