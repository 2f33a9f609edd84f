"""The FIC lint's rules for one federated credential, one function per rule (FIC_RULES), and Finding, what each
rule reports. Pure functions (ENTRA_FACTS: the FIC that trusts it)."""
import re
from dataclasses import dataclass

from exchange.clouds import CLOUDS, is_guid
from exchange.severity import Severity

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
FIC_NAME_MIN, FIC_NAME_MAX = 3, 120  # Entra's limits on a FIC's name
FIC_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{{FIC_NAME_MIN - 1},{FIC_NAME_MAX - 1}}}$")
MAX_FICS = 20
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_SUBJECT = re.compile(r"^repo:[^/\s:]+/[^/\s:]+:(ref:refs/(heads|tags)/\S+|environment:\S+|pull_request)$")
K8S_SUBJECT = re.compile(r"^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    fix: str
    fic_id: int | None = None
    action: str = ""  # "create_fic" when the portal can fix it itself
    identity_id: int | None = None


def entra_issuer_tenant(issuer: str) -> tuple[str, str] | None:
    """(cloud key, tenant) when the issuer is an Entra v2 issuer of a known cloud."""
    for key, cloud in CLOUDS.items():
        match = re.fullmatch(rf"https://{re.escape(cloud.login_host)}/([^/]+)/v2\.0", issuer)
        if match:
            return key, match.group(1)
    return None


@dataclass(frozen=True)
class _Fic:
    """What every rule of a FIC reads: the FIC, its app and cloud, its issuer parsed, and what it is checked against."""
    fic: object
    app: object
    identities: list
    siblings: list
    discovery: object
    issuer: str
    subject: str
    entra: tuple[str, str] | None  # (cloud key, tenant) of an Entra v2 issuer
    looks_entra: bool

    @property
    def cloud(self):
        return CLOUDS[self.app.cloud]

    def finding(self, code, severity, message, fix, action="") -> Finding:
        return Finding(code, severity, message, fix, self.fic.pk, action)


def _name(c: _Fic):
    if not FIC_NAME.match(c.fic.name or ""):
        yield c.finding("name", ERROR, f"Name “{c.fic.name}” breaks Entra's rules ({FIC_NAME_MIN}-{FIC_NAME_MAX} letters, digits, - or _, "
                        "starting with a letter or digit).",
                        "Create a FIC with a valid name and delete this one (names are immutable).")


def _issuer_whitespace(c: _Fic):
    if c.issuer != c.issuer.strip() or re.search(r"\s", c.issuer):
        yield c.finding("issuer_whitespace", ERROR, "The issuer contains whitespace: it can never match a token's "
                        "iss.", "Recreate the FIC with the issuer exactly as the token has it.")


def _issuer_format(c: _Fic):
    if c.looks_entra and c.entra is None:
        yield c.finding("issuer_format", ERROR, f"Issuer “{c.issuer}” is not of the form "
                        f"{c.cloud.issuer('{tenant id}')} (no trailing slash, v2.0, the tenant id).",
                        f"Use {c.cloud.issuer('<identity tenant id>')}.")


def _audience(c: _Fic):
    audiences, expected = list(c.fic.audiences or []), c.cloud.exchange_audience
    if len(audiences) != 1:
        yield c.finding("audience_count", ERROR, f"A FIC takes exactly one audience; this one has {len(audiences)}.",
                        f"Use the single audience {expected}.")
    elif c.entra and audiences[0] != expected and audiences[0] and audiences[0] == c.app.mi_audience:
        yield c.finding("audience_custom", WARNING, f"Custom audience “{audiences[0]}” (an older setup's "
                        "Application ID URI). It works because the workers request their token for it, but new FICs "
                        f"should use {expected}.", f"Move to {expected} when convenient.")
    elif c.entra and audiences[0] != expected:
        yield c.finding("audience", ERROR, f"Audience “{audiences[0]}” is not {c.cloud.name}'s exchange audience "
                        f"{expected}: exchanges fail with AADSTS700212/70021.",
                        f"Recreate the FIC with the audience {expected}.")


def _issuer_cloud(c: _Fic):
    if c.entra and c.entra[0] != c.app.cloud:
        yield c.finding("issuer_cloud", ERROR, f"The issuer is in {CLOUDS[c.entra[0]].name} but the app in "
                        f"{c.cloud.name}: cross-cloud federation is not supported.",
                        "Use an identity and app in the same cloud.")


def _subject_guid(c: _Fic):
    if not c.entra or (is_guid(c.subject) and c.subject == c.subject.lower()):  # as Entra gives principal ids
        return
    matching = next((i for i in c.identities if str(i.principal_id) == c.subject.lower()), None)
    if matching:
        yield c.finding("subject_case", ERROR, f"Subject matches {matching.name}'s principal id only ignoring case: "
                        "Entra compares subjects case-sensitively (AADSTS700213).",
                        f"Recreate the FIC with the subject {matching.principal_id} (lower case).")
    else:
        yield c.finding("subject_guid", ERROR, "The subject of a managed-identity FIC must be the identity's "
                        "principal (object) id, a GUID.", "Set the subject to the identity's principal id.")


def _subject_identity(c: _Fic):
    if not c.entra or not (is_guid(c.subject) and c.subject == c.subject.lower()):
        return
    identity = next((i for i in c.identities if str(i.principal_id) == c.subject), None)
    if identity is None:
        yield c.finding("subject_unknown", ERROR, f"Subject {c.subject} is not the principal id of any managed "
                        "identity registered here. Whoever holds that identity can act in every customer tenant that "
                        "consented to this app.",
                        "Delete this FIC unless you know and own that identity (then register it).")
    elif str(identity.tenant_id) != c.entra[1].lower():
        yield c.finding("issuer_tenant", ERROR, f"The issuer names tenant {c.entra[1]} but {identity.name} lives in "
                        f"{identity.tenant_id}: exchanges fail with AADSTS700211.",
                        f"Use the issuer {CLOUDS[identity.cloud].issuer(str(identity.tenant_id))}.")


def _external(c: _Fic) -> bool:
    return not c.looks_entra and bool(c.issuer)


def _github_subject(c: _Fic):
    if _external(c) and c.issuer.rstrip("/") == GITHUB_ISSUER and not GITHUB_SUBJECT.match(c.subject):
        yield c.finding("github_subject", ERROR, f"“{c.subject}” is not a GitHub Actions subject "
                        "(repo:ORG/REPO:ref:refs/heads/BRANCH, :environment:NAME, :pull_request).",
                        "Use the subject GitHub puts in its token for the workflow.")


def _k8s_subject(c: _Fic):
    kubernetes = (c.subject.startswith("system:serviceaccount:") or "kubernetes" in c.issuer
                  or "oidc.eks" in c.issuer)
    if (_external(c) and c.issuer.rstrip("/") != GITHUB_ISSUER and kubernetes
            and not K8S_SUBJECT.match(c.subject)):
        yield c.finding("k8s_subject", ERROR, f"“{c.subject}” is not a Kubernetes service-account subject "
                        "(system:serviceaccount:NAMESPACE:NAME).", "Use system:serviceaccount:<namespace>:<name>.")


def _issuer_https(c: _Fic):
    if _external(c) and not c.issuer.startswith("https://"):
        yield c.finding("issuer_https", ERROR, "An external issuer must be an https URL serving "
                        "/.well-known/openid-configuration.", "Use the provider's https issuer URL.")


def _issuer_discovery(c: _Fic):
    if _external(c) and c.issuer.startswith("https://") and c.discovery is not None:
        problem = c.discovery(c.issuer)
        if problem:
            yield c.finding("issuer_discovery", WARNING, f"The issuer's discovery document did not check out: "
                            f"{problem}", "Check the issuer URL; Entra fetches its keys from there.")


def _duplicate(c: _Fic):
    key = (c.issuer, c.subject)
    if any((s.issuer, s.subject) == key for s in c.siblings if s.pk != c.fic.pk):
        yield c.finding("duplicate", ERROR, "Another FIC of this app has the same issuer and subject (Graph refuses "
                        "this; the inventory found both).", "Delete one of them.")


def _same_identity(c: _Fic):
    """Two FICs of one app for one managed identity (issuers differing, e.g. a v1 and a v2 one): one is redundant."""
    if not c.entra or not is_guid(c.subject):
        return
    others = [s for s in c.siblings if s.pk != c.fic.pk and (s.subject or "").lower() == c.subject.lower()
              and (s.issuer, s.subject) != (c.issuer, c.subject)]
    if others:
        identity = next((i.name for i in c.identities if str(i.principal_id) == c.subject.lower()), c.subject)
        yield c.finding("duplicate_identity", WARNING, f"{', '.join(o.name for o in others)} also trusts {identity}: "
                        "two FICs for one identity, one of them redundant (each counts toward the limit of "
                        f"{MAX_FICS}).", "Keep the one whose issuer is exactly the identity's and delete the other.")


# The rules of one FIC, in the order their findings are shown.
FIC_RULES = (_name, _issuer_whitespace, _issuer_format, _audience, _issuer_cloud, _subject_guid, _subject_identity,
             _github_subject, _k8s_subject, _issuer_https, _issuer_discovery, _duplicate, _same_identity)


def lint_fic(fic, *, app, identities, siblings, discovery=None) -> list[Finding]:
    """Findings for one FIC. `identities`: the known managed identities; `siblings`: the app's other FICs;
    `discovery(issuer) -> str | None`: fetches an external issuer's discovery document, returns a problem or None."""
    issuer = fic.issuer or ""
    checked = _Fic(fic, app, identities, siblings, discovery, issuer, fic.subject or "",
                   entra_issuer_tenant(issuer.strip()),
                   any(c.login_host in issuer for c in CLOUDS.values()) or "sts.windows.net" in issuer)
    return [finding for rule in FIC_RULES for finding in rule(checked)]


