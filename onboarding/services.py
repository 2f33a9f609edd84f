"""Writes of onboarding: customers, tenants (resolved through discovery), consent links, the consent callback,
offboarding and bulk import. Every write is audited."""
import csv
import hashlib
import io
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from exchange import services as exchange_services
from exchange.clouds import CLOUDS
from exchange.entra import EntraUnavailable, TenantNotFound, tenant_discover
from onboarding.models import ConsentLink, Customer, CustomerTenant
from onboarding.selectors import active_tenants
from portal.services import Actor, audit_record

# Discovery's cloud_instance_name tells which national cloud a tenant belongs to (ENTRA_FACTS: Tenant discovery).
INSTANCE_CLOUDS = {"microsoftonline.com": "global", "microsoftonline.us": "usgov", "partner.microsoftonline.cn": "china"}
DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value.strip()) == 36


def customer_create(*, name: str, actor: Actor, contact_name: str = "", contact_email: str = "", notes: str = "",
                    created_by=None) -> Customer:
    customer = Customer(name=name.strip(), contact_name=contact_name, contact_email=contact_email, notes=notes,
                        created_by=created_by)
    customer.full_clean()
    customer.save()
    audit_record(action="customer.created", actor=actor, target_type="customer", target_id=str(customer.pk),
                 detail={"name": customer.name})
    return customer


def customer_update(*, customer: Customer, actor: Actor, **fields) -> Customer:
    for key, value in fields.items():
        setattr(customer, key, value)
    customer.full_clean()
    customer.save()
    audit_record(action="customer.updated", actor=actor, target_type="customer", target_id=str(customer.pk),
                 detail={"fields": sorted(fields)})
    return customer


def tenant_add(*, customer: Customer, domain_or_id: str, home_app, actor: Actor, cloud: str = "") -> CustomerTenant:
    """Resolve a verified domain or tenant id through OpenID discovery and add the tenant (raises ValidationError)."""
    value = (domain_or_id or "").strip().lower()
    cloud = cloud or home_app.cloud
    if not (_is_guid(value) or DOMAIN.match(value)):
        raise ValidationError({"domain_or_id": "Enter a domain such as contoso.com, or a tenant id (a GUID)."})
    try:
        found = tenant_discover(cloud_key=cloud, domain_or_id=value)
    except TenantNotFound as exc:
        raise ValidationError({"domain_or_id": f"{exc} Check the spelling, or whether the tenant is in another "
                                               "national cloud."}) from exc
    except EntraUnavailable as exc:
        raise ValidationError({"domain_or_id": str(exc)}) from exc
    actual = INSTANCE_CLOUDS.get(found.cloud_instance_name)
    if actual and actual != cloud:
        raise ValidationError({"domain_or_id": f"This tenant lives in {CLOUDS[actual].name}, not in "
                                               f"{CLOUDS[cloud].name}: choose that cloud (and a home app there)."})
    existing = CustomerTenant.objects.filter(cloud=cloud, tenant_id=found.tenant_id).select_related("customer").first()
    if existing:
        raise ValidationError({"domain_or_id": f"This tenant ({found.tenant_id}) is already onboarded for "
                                               f"{existing.customer}."})
    tenant = CustomerTenant(customer=customer, tenant_id=found.tenant_id, cloud=cloud, region=found.region,
                            primary_domain="" if _is_guid(value) else value, home_app=home_app)
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save()
            audit_record(action="tenant.added", actor=actor, target_type="tenant", target_id=str(tenant.pk),
                         tenant_id=str(tenant.tenant_id),
                         detail={"customer": customer.name, "entered": value, "region": found.region, "cloud": cloud})
    except IntegrityError as exc:  # added by someone else a moment ago
        raise ValidationError({"domain_or_id": "This tenant was just onboarded by someone else."}) from exc
    return tenant


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def consent_redirect_uri() -> str:
    return settings.PORTAL_PUBLIC_URL + reverse("onboarding:consent-callback")


def consent_url(*, tenant: CustomerTenant, state: str) -> str:
    """The tenant-specific admin-consent URL (ENTRA_FACTS: Admin consent), v1 or v2 per the home app."""
    app = tenant.home_app
    base = CLOUDS[tenant.cloud].login_base
    params = {"client_id": str(app.client_id)}
    if app.consent_version == app.ConsentVersion.V2:
        params["scope"] = CLOUDS[tenant.cloud].arm_scope
        path = f"{base}/{tenant.tenant_id}/v2.0/adminconsent"
    else:
        path = f"{base}/{tenant.tenant_id}/adminconsent"
    params.update(redirect_uri=consent_redirect_uri(), state=state)
    return f"{path}?{urlencode(params)}"


def consent_link_issue(*, tenant: CustomerTenant, actor: Actor, issued_by=None) -> tuple[ConsentLink, str]:
    """A new single-use link (256-bit state, only its hash kept); any earlier usable link is revoked."""
    if tenant.offboarded_at:
        raise ValidationError("This tenant is offboarded: no consent link can be issued for it.")
    now = timezone.now()
    state = secrets.token_urlsafe(32)
    with transaction.atomic():
        revoked = ConsentLink.objects.filter(tenant=tenant, used_at=None, revoked_at=None).update(
            revoked_at=now, outcome=ConsentLink.Outcome.REVOKED)
        link = ConsentLink(tenant=tenant, state_hash=state_hash(state), issued_by=issued_by, issued_at=now,
                           expires_at=now + timedelta(days=settings.CONSENT_LINK_TTL_DAYS))
        link.full_clean(exclude=["tenant", "issued_by", "verification"])
        link.save()
        CustomerTenant.objects.filter(pk=tenant.pk).update(invited_at=now)
        audit_record(action="consent_link.issued", actor=actor, target_type="consent_link", target_id=str(link.pk),
                     tenant_id=str(tenant.tenant_id),
                     detail={"expires_at": link.expires_at.isoformat(), "revoked_previous": revoked})
    tenant.invited_at = now
    return link, consent_url(tenant=tenant, state=state)


# --- the consent landing page -------------------------------------------------------------------------------------
CALLBACK_FIELDS = ("admin_consent", "tenant", "state", "scope", "error", "error_description", "error_uri")
MAX_PARAM = 1000
STATE_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(32) gives
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def state_hash_prefix(value: str) -> str:
    """The first 8 hex digits of a state's SHA-256: enough to tell attempts apart, useless for replaying one."""
    return hashlib.sha256(value.encode(errors="replace")).hexdigest()[:8]


def sanitise_params(query) -> dict:
    """Only Microsoft's parameters, each capped and stripped of control characters (kept and shown as text).
    `state` is a bearer secret until used: it is never kept, only its hash prefix."""
    clean = {}
    for name in CALLBACK_FIELDS:
        value = query.get(name)
        if value is None:
            continue
        if name == "state":
            clean["state_hash_prefix"] = state_hash_prefix(str(value).strip())
            continue
        value = _CONTROL.sub("", str(value))
        clean[name] = value[:MAX_PARAM] + ("…" if len(value) > MAX_PARAM else "")
    return clean


@dataclass
class CallbackResult:
    kind: str  # accepted | unknown_state | expired | replayed | revoked | tenant_mismatch | declined | wrong_account
    #           | consent_required | invalid_request | error | missing_state
    link: ConsentLink | None = None
    params: dict = field(default_factory=dict)
    test = None

    @property
    def status_code(self) -> int:
        return 200 if self.kind in ("accepted", "declined", "wrong_account", "consent_required") else 400


def _aadsts(description: str) -> str:
    match = re.search(r"AADSTS(\d+)", description or "")
    return match.group(1) if match else ""


def consent_callback_accept(*, query, ip: str | None) -> CallbackResult:
    """Validate Microsoft's redirect; on success record the consent and start the verification token test."""
    from exchange.services import token_test_start

    params = sanitise_params(query)
    actor = Actor.customer(ip)
    # Whitespace around the value (a wrapped or pasted link) is dropped; otherwise the value must be exactly a state
    # we issued: no looser lookup (no "first token that looks like ours"), and the value itself is never stored.
    candidate = str(query.get("state") or "").strip()
    well_formed = bool(STATE_FORMAT.fullmatch(candidate))
    link = (ConsentLink.objects.select_related("tenant", "tenant__home_app").filter(state_hash=state_hash(candidate))
            .first() if well_formed else None)

    def audit(kind, link=None, **detail):
        audit_record(action=f"consent.{kind}", actor=actor, target_type="consent_link",
                     target_id=str(link.pk) if link else "", tenant_id=str(link.tenant.tenant_id) if link else "",
                     detail={"params": params, **detail}, ip=ip)

    if not candidate:
        audit("missing_state")
        return CallbackResult("missing_state", params=params)
    if link is None:
        audit("unknown_state", **({} if well_formed else {"malformed": True}))
        return CallbackResult("unknown_state", params=params)
    now = timezone.now()
    for kind, refused in (("revoked", link.revoked_at is not None), ("replayed", link.used_at is not None),
                          ("expired", link.expires_at <= now)):
        if refused:
            audit(kind, link)
            return CallbackResult(kind, link=link, params=params)
    # Claim the link: exactly one request can use a state, even two arriving at once.
    with transaction.atomic():
        if not ConsentLink.objects.filter(pk=link.pk, used_at=None, revoked_at=None).update(used_at=now):
            audit("replayed", link)
            return CallbackResult("replayed", link=link, params=params)
        link.used_at = now
        link.redirect_params = params
        tenant = link.tenant
        if params.get("error"):
            code = _aadsts(params.get("error_description", ""))
            kind = {"65004": "declined", "50020": "wrong_account"}.get(code) or (
                "declined" if params["error"] == "access_denied" else
                params["error"] if params["error"] in ("consent_required", "invalid_request") else "error")
            link.outcome = ConsentLink.Outcome.DECLINED if kind == "declined" else ConsentLink.Outcome.ERROR
            link.save(update_fields=["used_at", "redirect_params", "outcome"])
            if kind == "declined":
                CustomerTenant.objects.filter(pk=tenant.pk).update(declined_at=now)
            audit(kind, link, aadsts=code)
            return CallbackResult(kind, link=link, params=params)
        returned = (params.get("tenant") or "").lower()
        if params.get("admin_consent", "").lower() != "true" or returned != str(tenant.tenant_id):
            link.outcome = ConsentLink.Outcome.TENANT_MISMATCH
            link.save(update_fields=["used_at", "redirect_params", "outcome"])
            audit("tenant_mismatch", link, expected=str(tenant.tenant_id), returned=returned)
            return CallbackResult("tenant_mismatch", link=link, params=params)
        link.outcome = ConsentLink.Outcome.ACCEPTED
        CustomerTenant.objects.filter(pk=tenant.pk).update(consent_received_at=now)
        audit("received", link)
        # The redirect is no proof (anyone can forge it): the exchange against the tenant is.
        test = token_test_start(tenant=tenant, trigger="consent", actor=actor)
        link.verification = test
        link.save(update_fields=["used_at", "redirect_params", "outcome", "verification"])
    result = CallbackResult("accepted", link=link, params=params)
    result.test = test
    return result


def tenant_offboard(*, tenant: CustomerTenant, actor: Actor) -> CustomerTenant:
    now = timezone.now()
    with transaction.atomic():
        CustomerTenant.objects.filter(pk=tenant.pk, offboarded_at=None).update(offboarded_at=now)
        ConsentLink.objects.filter(tenant=tenant, used_at=None, revoked_at=None).update(
            revoked_at=now, outcome=ConsentLink.Outcome.REVOKED)
        audit_record(action="tenant.offboarded", actor=actor, target_type="tenant", target_id=str(tenant.pk),
                     tenant_id=str(tenant.tenant_id))
    tenant.refresh_from_db()
    return tenant


# --- bulk onboarding ------------------------------------------------------------------------------------------------
@dataclass
class BulkRow:
    line: int
    customer: str
    entered: str
    ok: bool
    message: str
    tenant: CustomerTenant | None = None


BULK_COLUMNS = ("customer", "domain_or_tenant_id")
MAX_BULK_PROBLEMS = 50  # shown; the rest are counted
MAX_ENTERED = 255


def _shown(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _bulk_problem(line: int, column: str, value: str, limit: int, what: str) -> str | None:
    if not value:
        return f"Line {line}, column {column}: empty; {what} is needed."
    if len(value) > limit:
        return f"Line {line}, column {column}: {len(value):,} characters; at most {limit}."
    if _CONTROL.search(value):  # a NUL would not even reach PostgreSQL
        return f"Line {line}, column {column}: contains control characters (such as NUL)."
    return None


def bulk_rows_check(data: bytes) -> tuple[list[tuple[int, str, str]], list[str]]:
    """Read and check a whole bulk-import file without creating anything or calling anyone: (rows as (line, customer,
    entered), problems). Any problem refuses the file."""
    max_bytes, max_rows = settings.BULK_IMPORT_MAX_BYTES, settings.BULK_IMPORT_MAX_ROWS
    if len(data) > max_bytes:
        return [], [f"The file is larger than {max_bytes:,} bytes: split it (at most {max_rows} rows per file)."]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [f"The file is not UTF-8 text (byte {exc.start + 1:,} is not). Export the CSV as UTF-8."]
    reader = csv.reader(io.StringIO(text, newline=""))
    name_limit = Customer._meta.get_field("name").max_length
    rows, problems, header = [], [], None
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank lines
            if header is None:
                header = [cell.strip().lower() for cell in record]
                if not set(BULK_COLUMNS) <= set(header):
                    return [], ["The first row must name the columns: customer,domain_or_tenant_id"]
                at = [header.index(column) for column in BULK_COLUMNS]
                continue
            line = reader.line_num
            cells = [record[i].strip() if i < len(record) else "" for i in at]
            name, entered = cells[0], cells[1].lower()
            rows.append((line, name, entered))
            if len(rows) > max_rows:
                continue  # only counted from here on
            entered_problem = _bulk_problem(line, "domain_or_tenant_id", entered, MAX_ENTERED, "a domain or tenant id")
            problems += filter(None, [_bulk_problem(line, "customer", name, name_limit, "a customer name"),
                                      entered_problem])
            if not entered_problem and not (_is_guid(entered) or DOMAIN.match(entered)):
                problems.append(f"Line {line}, column domain_or_tenant_id: “{_shown(entered)}” is neither a domain "
                                "(such as contoso.com) nor a tenant id (a GUID).")
    except csv.Error as exc:
        # The csv module refuses a field over its limit (131,072 characters) or a NUL byte: the file is refused.
        reason = (f"a value is longer than {csv.field_size_limit():,} characters (at most {MAX_ENTERED})"
                  if "field larger than field limit" in str(exc) else f"not readable as CSV ({exc})")
        return [], [*problems, f"Line {reader.line_num}: {reason}."]
    if header is None:
        return [], ["The file is empty: the first row must name the columns: customer,domain_or_tenant_id"]
    if len(rows) > max_rows:
        problems.insert(0, f"The file has {len(rows):,} rows: at most {max_rows} per file. Split it.")
    elif not rows:
        problems.append("The file has a header but no rows.")
    return rows, problems


def bulk_import(*, data: bytes, home_app, actor: Actor, created_by=None) -> list[BulkRow]:
    """CSV with columns `customer` and `domain_or_tenant_id` (a header row). The whole file is checked first (size,
    encoding, header, row count, every value): a file with any problem is refused whole, nothing created and nobody
    called (ValidationError listing each problem by line and column). Then each row stands alone: created whole
    (customer if new, and tenant, resolved through discovery) or not at all, with the reason. Every attempt is
    audited, with the file's size and SHA-256 (never its content)."""
    about = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    checked, problems = bulk_rows_check(data)
    if problems:
        audit_record(action="tenant.bulk_import_refused", actor=actor,
                     detail={**about, "problems": len(problems), "first_problems": problems[:5]})
        more = len(problems) - MAX_BULK_PROBLEMS
        raise ValidationError(problems[:MAX_BULK_PROBLEMS] + ([f"… and {more} more problems."] if more > 0 else []))
    rows: list[BulkRow] = []
    for line, name, entered in checked:
        try:
            with transaction.atomic():
                customer = Customer.objects.filter(name__iexact=name).first() or customer_create(
                    name=name, actor=actor, created_by=created_by)
                tenant = tenant_add(customer=customer, domain_or_id=entered, home_app=home_app, actor=actor)
            rows.append(BulkRow(line, name, entered, True, f"Added tenant {tenant.tenant_id}", tenant))
        except ValidationError as exc:
            messages = exc.message_dict.get("domain_or_id") or exc.message_dict.get("name") or exc.messages
            rows.append(BulkRow(line, name, entered, False, " ".join(messages)))
    created = sum(r.ok for r in rows)
    audit_record(action="tenant.bulk_import", actor=actor,
                 detail={**about, "rows": len(rows), "created": created, "refused": len(rows) - created})
    return rows


def sweep_all_start(*, trigger: str, actor: Actor, started_by=None, jitter_seconds: float = 0.0):
    """A sweep of every active tenant (onboarding.selectors.active_tenants)."""
    return exchange_services.sweep_start(tenant_pks=list(active_tenants().values_list("pk", flat=True)),
                                         trigger=trigger, actor=actor, started_by=started_by,
                                         jitter_seconds=jitter_seconds)
