"""Every error code of ENTRA_FACTS.md has a diagnosis with a cause, a fix and words for the customer."""
import pytest

from exchange.diagnosis import CATALOGUE, diagnose_code
from exchange.models import TokenTest

ENTRA_FACTS_CODES = [70021, 700211, 700212, 700213, 700222, 700229, 700226, 700236, 700024, 700027, 50027, 50013,
                     700016, 500011, 90002, 53003, 7000112, 500014, 90038, 1000104]


@pytest.mark.parametrize("code", ENTRA_FACTS_CODES)
def test_every_documented_code_is_diagnosed(code):
    diagnosis = diagnose_code(f"AADSTS{code}")
    assert diagnosis.recognised
    assert diagnosis.outcome in TokenTest.Outcome.values
    assert diagnosis.title and diagnosis.cause and diagnosis.fix and diagnosis.customer_text


def test_no_consent_and_no_role_are_distinct_outcomes():
    assert diagnose_code("AADSTS700016").outcome == "not_consented"
    assert diagnose_code("no_role").outcome == diagnose_code("AuthorizationFailed").outcome == "no_role"
    assert "role" in diagnose_code("no_role").customer_text


def test_unknown_codes_keep_the_raw_error_and_say_so():
    diagnosis = diagnose_code("AADSTS999999", {"error": "weird_error", "error_codes": [999999]})
    assert not diagnosis.recognised and diagnosis.outcome == "error"
    assert "weird_error" in diagnosis.cause and "999999" in diagnosis.cause


def test_every_outcome_is_reachable():
    assert {d.outcome for d in CATALOGUE.values()} == set(TokenTest.Outcome.values)
