"""The audit trail: its events, a page at a time or exported."""
import json
from datetime import datetime

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema

from api import schemas as s
from api.api import caller_of, guarded
from api.problems import Problem
from api.routes.common import keyset_page
from portal import selectors as portal_selectors
from portal.keyset import count_bounded
from portal.services import audit_record, client_ip

# --- the audit trail -------------------------------------------------------------------------------------------------
audit = Router(tags=["audit trail"])


class AuditFilters(Schema):
    action: str = ""
    actor: str = ""
    tenant_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


EXPORT_FIELDS = ["seq", "at", "actor_kind", "actor_id", "actor_label", "action", "target_type", "target_id",
                 "tenant_id", "detail", "ip", "prev_hash", "hash"]


def _event(e) -> dict:
    return {f: getattr(e, f) for f in s.AuditEventOut.model_fields}


def _audit_events(filters: AuditFilters):
    return portal_selectors.audit_events(action=filters.action[:64], actor=filters.actor[:200],
                                         tenant_id=filters.tenant_id[:64], since=filters.since, until=filters.until)


@guarded(audit, "get", "/audit-events", capability="audit", response=s.page_of(s.AuditEventOut))
def audit_event_list(request, filters: Query[AuditFilters], cursor: str | None = None, limit: int = 100):
    """Newest first; follow next_cursor for older events."""
    return keyset_page(_audit_events(filters), field="seq", descending=True, cursor=cursor, limit=limit, shape=_event)


@guarded(audit, "get", "/audit-events/export", capability="audit", response={200: None}, openapi_extra={
    "responses": {"200": {"description": "JSON Lines, oldest first",
                          "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}})
def audit_event_export(request, filters: Query[AuditFilters]):
    """Stream the (filtered) trail as JSON Lines, oldest first; the export itself is audited. At most
    API_EXPORT_MAX_ROWS events: a larger export is refused before anything is sent (a request must finish within the
    server's timeout; the portal's exports run in the background and have no such limit)."""
    caller = caller_of(request)
    found = count_bounded(_audit_events(filters), exact_up_to=settings.API_EXPORT_MAX_ROWS)
    if not found.exact:
        raise Problem(422, "export-too-large", "Export too large",
                      f"These filters match {found} events, more than the {settings.API_EXPORT_MAX_ROWS:,} an API "
                      "export streams. Narrow them (since, until, action, actor, tenant_id), page through GET "
                      "/api/v1/audit-events with next_cursor, or start a background export on the portal's audit page.",
                      limit=settings.API_EXPORT_MAX_ROWS)
    audit_record(action="audit.exported", actor=caller.actor, ip=client_ip(request), detail={
        "format": "jsonl", "via": "api", "filters": {k: str(v) for k, v in filters.dict().items() if v}})
    events = _audit_events(filters).order_by("seq").values_list(*EXPORT_FIELDS)

    def lines():
        for row in events.iterator(chunk_size=2000):
            item = dict(zip(EXPORT_FIELDS, row, strict=True))
            item["at"] = item["at"].isoformat()
            yield json.dumps(item, sort_keys=True) + "\n"

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"'
    return response
