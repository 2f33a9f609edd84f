"""Every lint rule with a failing and a passing case (pure: model instances, no database writes needed)."""
import uuid

import pytest
from django.utils import timezone

from exchange.lint import ERROR, WARNING, lint_app, lint_fic
from exchange.models import FederatedCredential, HomeApp, ManagedIdentity

HOME = "11111111-1111-4111-8111-111111111111"
PRINCIPAL = "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098"
ISSUER = f"https://login.microsoftonline.com/{HOME}/v2.0"
CALLBACK = "https://portal.example/consent/callback/"


def _app(**fields):
    return HomeApp(pk=1, name="app", client_id=uuid.uuid4(), home_tenant_id=HOME, cloud="global",
                   sign_in_audience="AzureADMultipleOrgs", redirect_uris=[CALLBACK], graph_synced_at=timezone.now(),
                   **fields)


IDENTITY = ManagedIdentity(pk=1, name="worker", client_id=uuid.uuid4(), principal_id=uuid.UUID(PRINCIPAL),
                           tenant_id=uuid.UUID(HOME), cloud="global", in_use=True)
_pk = iter(range(100, 10_000))


def _fic(**fields):
    values = {"name": "worker", "issuer": ISSUER, "subject": PRINCIPAL, "audiences": ["api://AzureADTokenExchange"],
              **fields}
    return FederatedCredential(pk=next(_pk), graph_id=str(uuid.uuid4()), **values)


def codes(fic, app=None, siblings=None, discovery=None):
    return {f.code for f in lint_fic(fic, app=app or _app(), identities=[IDENTITY], siblings=siblings or [fic],
                                     discovery=discovery)}


def test_a_correct_fic_has_no_finding():
    assert codes(_fic()) == set()


@pytest.mark.parametrize("change, code", [
    ({"name": "-bad"}, "name"),
    ({"name": "ab"}, "name"),
    ({"issuer": ISSUER + "/"}, "issuer_format"),
    ({"issuer": f"https://login.microsoftonline.com/{HOME}"}, "issuer_format"),
    ({"issuer": ISSUER + " "}, "issuer_whitespace"),
    ({"issuer": f"https://login.microsoftonline.com/{uuid.uuid4()}/v2.0"}, "issuer_tenant"),
    ({"issuer": f"https://login.microsoftonline.us/{HOME}/v2.0"}, "issuer_cloud"),
    ({"audiences": ["api://AzureADTokenExchange", "x"]}, "audience_count"),
    ({"audiences": ["api://AzureADTokenExchangeUSGov"]}, "audience"),
    ({"subject": "worker"}, "subject_guid"),
    ({"subject": PRINCIPAL.upper()}, "subject_case"),
    ({"subject": str(uuid.uuid4())}, "subject_unknown"),
    ({"issuer": "https://token.actions.githubusercontent.com", "subject": "contoso/infra"}, "github_subject"),
    ({"issuer": "https://oidc.eks.example/id/ABC", "subject": "system:serviceaccount:Bad NS:x"}, "k8s_subject"),
    ({"issuer": "http://issuer.example", "subject": "anything"}, "issuer_https"),
])
def test_each_rule_fails(change, code):
    assert code in codes(_fic(**change))


@pytest.mark.parametrize("change", [
    {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:contoso/infra:ref:refs/heads/main"},
    {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:contoso/infra:environment:prod"},
    {"issuer": "https://oidc.eks.example/id/ABC", "subject": "system:serviceaccount:keyless:worker"},
])
def test_other_issuer_subjects_that_pass(change):
    assert codes(_fic(**change), discovery=lambda issuer: None) == set()


def test_unknown_identity_warns_about_every_customer_tenant():
    (finding,) = lint_fic(_fic(subject=str(uuid.uuid4())), app=_app(), identities=[IDENTITY], siblings=[])
    assert finding.severity == ERROR and "every customer tenant" in finding.message


def test_custom_audience_is_a_warning_when_the_app_uses_it():
    app = _app(mi_audience="api://contoso-legacy")
    (finding,) = lint_fic(_fic(audiences=["api://contoso-legacy"]), app=app, identities=[IDENTITY], siblings=[])
    assert (finding.code, finding.severity) == ("audience_custom", WARNING)


def test_external_issuer_discovery_is_checked():
    fic = _fic(issuer="https://issuer.example", subject="svc")
    assert "issuer_discovery" in codes(fic, discovery=lambda issuer: "no answer")
    assert "issuer_discovery" not in codes(fic, discovery=lambda issuer: None)


def test_duplicates():
    first, second = _fic(), _fic(name="worker-2")
    assert "duplicate" in codes(first, siblings=[first, second])
    assert "duplicate" not in codes(first, siblings=[first, _fic(name="other", subject=str(uuid.uuid4()))])


def _app_codes(app, fics, identities=(IDENTITY,)):
    findings, _ = lint_app(app, fics=fics, identities=list(identities), portal_redirect_uri=CALLBACK)
    return {f.code for f in findings}


def test_app_rules():
    good = [_fic()]
    assert _app_codes(_app(), good) == set()
    assert "identity_untrusted" in _app_codes(_app(), [])
    assert "identity_untrusted" not in _app_codes(_app(), [], identities=[ManagedIdentity(
        name="spare", principal_id=uuid.uuid4(), tenant_id=uuid.UUID(HOME), in_use=False)])
    assert "single_tenant" in _app_codes(_app_with(sign_in_audience="AzureADMyOrg"), good)
    assert "redirect_uri" in _app_codes(_app_with(redirect_uris=["https://elsewhere/"]), good)
    many = good + [_fic(name=f"gh-{i}", issuer="https://token.actions.githubusercontent.com",
                        subject=f"repo:c/r{i}:pull_request") for i in range(17)]
    assert "fic_near_limit" in _app_codes(_app(), many)
    assert "fic_limit" in _app_codes(_app(), many + [_fic(name="x1", subject="repo:c/x:pull_request",
                                                          issuer="https://token.actions.githubusercontent.com"),
                                                     _fic(name="x2", subject="repo:c/y:pull_request",
                                                          issuer="https://token.actions.githubusercontent.com")])
    assert "never_synced" in _app_codes(_app_with(graph_synced_at=None), good)
    assert "graph_forbidden" in _app_codes(_app_with(graph_error={"code": "Authorization_RequestDenied",
                                                                  "status": 403}), good)
    assert "graph_not_found" in _app_codes(_app_with(graph_error={"code": "Request_ResourceNotFound",
                                                                  "status": 404}), good)


def _app_with(**fields):
    app = _app()
    for key, value in fields.items():
        setattr(app, key, value)
    return app
