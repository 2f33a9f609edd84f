"""Keyset pagination (portal/keyset.py): walking a list older then newer loses and doubles no row, ties in the first
key included; filters ride along; a stray cursor shows the first page; counts are exact up to the threshold, estimated
(PostgreSQL's planner) past it."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from exchange.models import TokenTest
from exchange.selectors import TOKEN_TEST_KEYS, token_tests
from portal.keyset import ListCount, count_bounded, cursor_decode, keyset_page
from portal.models import AuditEvent
from portal.selectors import AUDIT_KEYS, audit_events
from portal.services import Actor, audit_record_many


def walk(queryset, keys, size):
    """Every page, oldest-ward from the first, then back newer-ward from the last: the rows of each page."""
    pages, page = [], keyset_page(queryset, keys=keys, size=size)
    pages.append(page)
    while page.older:
        page = keyset_page(queryset, keys=keys, size=size, older=page.older)
        pages.append(page)
    back = [page]
    while page.newer:
        page = keyset_page(queryset, keys=keys, size=size, newer=page.newer)
        back.append(page)
    return pages, back


@pytest.fixture
def tests_with_ties(make_tenant):
    """23 token tests, many sharing a queued_at (a sweep queues its tests in one statement)."""
    tenant, other = make_tenant(), make_tenant()
    start = timezone.now() - timedelta(hours=1)
    TokenTest.objects.bulk_create([
        TokenTest(tenant=tenant if n % 3 else other, trigger="sweep", queued_at=start + timedelta(seconds=n // 4),
                  status="failed" if n % 2 else "succeeded", outcome="misconfigured" if n % 2 else "verified")
        for n in range(23)])
    return tenant


@pytest.mark.django_db
def test_no_token_test_is_lost_or_doubled_across_pages(tests_with_ties):
    everything = list(token_tests())
    pages, back = walk(token_tests(), TOKEN_TEST_KEYS, size=5)
    seen = [t.pk for page in pages for t in page]
    assert seen == [t.pk for t in everything] and len(set(seen)) == 23
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3] and pages[0].first and not pages[-1].older
    assert [[t.pk for t in p] for p in back] == [[t.pk for t in p] for p in reversed(pages)]
    assert back[-1].first  # walking newer ends on the newest page, which has no newer link


@pytest.mark.django_db
def test_filters_apply_on_every_page(tests_with_ties):
    filtered = token_tests(outcome="misconfigured", tenant_id=tests_with_ties.pk)
    pages, _ = walk(filtered, TOKEN_TEST_KEYS, size=2)
    seen = [t for page in pages for t in page]
    assert [t.pk for t in seen] == [t.pk for t in filtered]
    assert {(t.outcome, t.tenant_id) for t in seen} == {("misconfigured", tests_with_ties.pk)}


@pytest.mark.django_db
def test_audit_events_page_by_seq():
    audit_record_many([{"action": f"test.page.{n % 2}", "actor": Actor.system("t")} for n in range(12)])
    pages, back = walk(audit_events(action="test.page.1"), AUDIT_KEYS, size=4)
    assert [[e.seq for e in p] for p in pages] == [[12, 10, 8, 6], [4, 2]]
    assert [[e.seq for e in p] for p in back] == [[4, 2], [12, 10, 8, 6]]


@pytest.mark.django_db
def test_a_stray_cursor_shows_the_first_page(tests_with_ties):
    first = keyset_page(token_tests(), keys=TOKEN_TEST_KEYS, size=5)
    for stray in ("nonsense", "1_2_3", "99999999999999999999999_1", "1700000000000000_x"):
        page = keyset_page(token_tests(), keys=TOKEN_TEST_KEYS, size=5, older=stray)
        assert [t.pk for t in page] == [t.pk for t in first] and page.first
    assert cursor_decode(AuditEvent.objects.all(), "-", AUDIT_KEYS) is None


@pytest.mark.django_db
def test_counts_are_exact_below_the_threshold_and_estimated_past_it(tests_with_ties):
    assert count_bounded(token_tests(), exact_up_to=100) == ListCount(23)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE exchange_tokentest")
        assert str(count_bounded(token_tests(), exact_up_to=10)) == "about 23"  # the planner's statistics
    else:
        assert str(count_bounded(token_tests(), exact_up_to=10)) == "more than 10"  # no planner to ask
    assert str(ListCount(1234)) == "1,234"
    assert str(ListCount(1_020_000, exact=False)) == "about 1,020,000"
    assert str(ListCount(500, exact=False, counted=10_000)) == "more than 10,000"  # the planner guessed low


@pytest.mark.django_db
def test_the_actor_filter_pages_too_and_has_its_trigram_index_on_postgresql():
    audit_record_many([{"action": "test.actor", "actor": Actor.system(f"robot-{n % 3}")} for n in range(9)])
    pages, _ = walk(audit_events(actor="ROBOT-1"), AUDIT_KEYS, size=2)
    assert [[e.actor_label for e in p] for p in pages] == [["robot-1", "robot-1"], ["robot-1"]]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_actor_trgm'")
            assert "gin_trgm_ops" in cursor.fetchone()[0]
