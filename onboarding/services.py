"""Writes of onboarding: customers, tenants (resolved through discovery), consent links, the consent callback,
offboarding and bulk import. Every write is audited."""
import hashlib
import re
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.clouds import CLOUDS, INSTANCE_CLOUDS, consent_redirect_uri, is_guid
from exchange.entra import EntraUnavailable, TenantNotFound, tenant_discover
from exchange.models import Sweep
from exchange.services import sweep_start
from onboarding.models import ConsentLink, Customer, CustomerTenant
from onboarding.selectors import active_tenants
from onboarding.tags import tags_get_or_create, tenants_tagged
from portal.services import Actor, audit_record

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def customer_create(*, name: str, actor: Actor, contact_name: str = "", contact_email: str = "", notes: str = "",
                    created_by=None, tags=(), access_profile=None) -> Customer:
    customer = Customer(name=name.strip(), contact_name=contact_name, contact_email=contact_email, notes=notes,
                        created_by=created_by, access_profile=access_profile)
    customer.full_clean()
    with transaction.atomic():
        customer.save()
        customer.tags.set(tags_get_or_create(tags))
        audit_record(action="customer.created", actor=actor, target_type="customer", target_id=str(customer.pk),
                     detail={"name": customer.name, "tags": sorted(tags)})
    return customer


CUSTOMER_EDITABLE = ("name", "contact_name", "contact_email", "notes")


def customer_update(*, customer: Customer, actor: Actor, data: dict, tags=None) -> tuple[Customer, list[str]]:
    """HackSoft's model_update: set the given editable fields (the agreed access profile, and the tags when given),
    full_clean, save only what changed, audit each change as old → new. Returns the customer and the names of the changed fields."""
    changes = {}
    for name in CUSTOMER_EDITABLE:
        if name in data and getattr(customer, name) != data[name]:
            changes[name] = {"old": getattr(customer, name), "new": data[name]}
            setattr(customer, name, data[name])
    if "access_profile" in data and customer.access_profile != data["access_profile"]:
        changes["access_profile"] = {"old": str(customer.access_profile or "default"),
                                     "new": str(data["access_profile"] or "default")}
        customer.access_profile = data["access_profile"]
    old_tags = sorted(customer.tags.values_list("name", flat=True))
    if tags is not None and sorted(tags) != old_tags:
        changes["tags"] = {"old": old_tags, "new": sorted(tags)}
    if not changes:
        return customer, []
    customer.full_clean()
    with transaction.atomic():
        customer.save(update_fields=[name for name in changes if name != "tags"] or None)
        if "tags" in changes:
            customer.tags.set(tags_get_or_create(tags))
        audit_record(action="customer.updated", actor=actor, target_type="customer", target_id=str(customer.pk),
                     detail={"name": customer.name, "changes": changes})
    return customer, list(changes)


def customer_archive(*, customer: Customer, actor: Actor) -> list[CustomerTenant]:
    """Archive a customer: its tenants not yet offboarded are offboarded first (tests stop, open links revoked), then
    it is hidden from the lists. Returns the tenants offboarded now."""
    if customer.archived_at:
        raise ValidationError(f"{customer} is already archived.")
    with transaction.atomic():
        offboarded = [tenant_offboard(tenant=tenant, actor=actor)
                      for tenant in customer.tenants.filter(offboarded_at=None).order_by("pk")]
        customer.archived_at = timezone.now()
        customer.save(update_fields=["archived_at"])
        audit_record(action="customer.archived", actor=actor, target_type="customer", target_id=str(customer.pk),
                     detail={"name": customer.name, "tenants_offboarded": [str(t.tenant_id) for t in offboarded]})
    return offboarded


def customer_unarchive(*, customer: Customer, actor: Actor) -> Customer:
    """Show an archived customer again; its tenants stay offboarded (onboard them anew to test them)."""
    if not customer.archived_at:
        raise ValidationError(f"{customer} is not archived.")
    with transaction.atomic():
        customer.archived_at = None
        customer.save(update_fields=["archived_at"])
        audit_record(action="customer.unarchived", actor=actor, target_type="customer", target_id=str(customer.pk),
                     detail={"name": customer.name})
    return customer


def customer_access_profile_set(*, customer: Customer, access_profile, actor: Actor) -> bool:
    """Agree another access with the customer (None: the default profile); the next token test checks it. Returns
    whether it changed."""
    before = customer.access_profile
    if before == access_profile:
        return False
    customer.access_profile = access_profile
    customer.save(update_fields=["access_profile"])
    audit_record(action="customer.access_profile_set", actor=actor, target_type="customer", target_id=str(customer.pk),
                 detail={"changes": {"access_profile": [str(before or "default"), str(access_profile or "default")]}})
    return True


def tenant_add(*, customer: Customer, domain_or_id: str, home_app, actor: Actor, cloud: str = "",
               tags=()) -> CustomerTenant:
    """Resolve a verified domain or tenant id through OpenID discovery and add the tenant (raises ValidationError)."""
    value = (domain_or_id or "").strip().lower()
    cloud = cloud or home_app.cloud
    if not (is_guid(value) or DOMAIN.match(value)):
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
                            primary_domain="" if is_guid(value) else value, home_app=home_app)
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save()
            tenant.tags.set(tags_get_or_create(tags))
            audit_record(action="tenant.added", actor=actor, target_type="tenant", target_id=str(tenant.pk),
                         tenant_id=str(tenant.tenant_id),
                         detail={"customer": customer.name, "entered": value, "region": found.region, "cloud": cloud,
                                 "tags": sorted(tags)})
    except IntegrityError as exc:  # added by someone else a moment ago
        raise ValidationError({"domain_or_id": "This tenant was just onboarded by someone else."}) from exc
    return tenant


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


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


# --- token tests of tenants ----------------------------------------------------------------------------------------
def sweep_all_start(*, trigger: str, actor: Actor, started_by=None, jitter_seconds: float = 0.0,
                    tag: str = "") -> Sweep:
    """A sweep of every active tenant (onboarding.selectors.active_tenants), or of those carrying `tag` (their own
    or their customer's)."""
    tenants = active_tenants().filter(tenants_tagged(tag)) if tag else active_tenants()
    with transaction.atomic():
        sweep = sweep_start(tenant_pks=list(tenants.values_list("pk", flat=True)), trigger=trigger, actor=actor,
                            started_by=started_by, jitter_seconds=jitter_seconds)
        if tag:
            audit_record(action="sweep.scoped", actor=actor, target_type="sweep", target_id=str(sweep.pk),
                         detail={"tag": tag, "tenants": sweep.total})
    return sweep
