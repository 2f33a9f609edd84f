"""The API's request and response bodies (pydantic, through django-ninja): what the OpenAPI document describes."""
from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from portal.roles import ROLES

Role = Literal[ROLES]  # type: ignore[valid-type]


class ExchangeIn(Schema):
    audience: str = Field(max_length=600, description="The audience the workload's token was issued for.")
    issuer_uri: str = Field(max_length=600, description="Exactly the token's iss.")
    jwt_token: str = Field(max_length=16384, description="The workload's platform token (a JWT).")


class ExchangeOut(Schema):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds")
    expires_at: datetime
    role: str
    identity_provider: str


class IdentityProviderIn(Schema):
    name: str = Field(max_length=120)
    description: str = ""
    kind: Literal["azure", "github", "oidc"] = "oidc"
    issuer_url: str = Field(max_length=600)
    audience: str = Field(max_length=600)
    subject: str = Field(max_length=600)
    claim_name: str = ""
    claim_value: str = ""
    role: Role
    session_seconds: int = Field(900, ge=60, le=3600)
    enabled: bool = True


class IdentityProviderPatch(Schema):
    description: str | None = None
    audience: str | None = Field(None, max_length=600)
    subject: str | None = Field(None, max_length=600)
    claim_name: str | None = None
    claim_value: str | None = None
    role: Role | None = None
    session_seconds: int | None = Field(None, ge=60, le=3600)
    enabled: bool | None = None


class IdentityProviderOut(IdentityProviderIn):
    id: int
    created_at: datetime


class PortalTokenOut(Schema):
    id: int
    identity_provider: str
    subject: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


class CustomerIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    contact_name: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=254)
    notes: str = ""


class CustomerOut(Schema):
    id: int
    name: str
    contact_name: str
    contact_email: str
    notes: str
    created_at: datetime
    tenant_count: int


class TenantIn(Schema):
    customer_id: int
    domain_or_id: str = Field(max_length=253, description="A verified domain (contoso.com) or the tenant id (GUID).")
    home_app_id: int | None = Field(None, description="Needed when more than one home app is registered.")
    cloud: Literal["", "global", "usgov", "china"] = ""


class TenantOut(Schema):
    id: int
    customer_id: int
    customer: str
    tenant_id: str
    cloud: str
    primary_domain: str
    display_name: str
    region: str
    status: str
    status_label: str
    home_app_id: int
    created_at: datetime
    invited_at: datetime | None
    consent_received_at: datetime | None
    verified_at: datetime | None
    offboarded_at: datetime | None
    last_tested_at: datetime | None
    last_outcome: str = Field(description="The last definitive outcome (a check that could not reach Microsoft never "
                                          "replaces it: see last_check_*).")
    consecutive_failures: int
    failing_since: datetime | None
    last_check_at: datetime | None = Field(description="The latest test, whatever its outcome.")
    last_check_outcome: str = Field(description="Its outcome: e.g. transient while last_outcome stays verified.")


class ConsentLinkOut(Schema):
    id: int
    tenant_id: int
    url: str = Field(description="Shown once: only a hash of its state is kept.")
    issued_at: datetime
    expires_at: datetime


class DiagnosisOut(Schema):
    code: str
    outcome: str
    title: str
    cause: str
    fix: str
    fix_place: str
    severity: str


class StepOut(Schema):
    name: str
    attempt: int
    started_at: datetime
    duration_ms: int
    ok: bool
    http_status: int | None
    error_code: str
    error: str
    message: str
    trace_id: str
    correlation_id: str
    claims: dict


class TokenTestOut(Schema):
    id: int
    tenant_id: int
    tenant: str
    trigger: str
    sweep_id: int | None
    status: str
    outcome: str
    diagnosis_code: str
    attempts: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TokenTestDetailOut(TokenTestOut):
    steps: list[StepOut]
    diagnosis: DiagnosisOut | None


class SweepOut(Schema):
    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    total: int
    done: int
    succeeded: int
    failed: int
    percent: int
    running: bool


class HealthOut(Schema):
    tenants_total: int
    tenants_verified: int
    tenants_no_role: int
    tenants_failing: int
    tenants_untested: int
    recent_total: int
    recent_success_rate: int | None
    running: int
    top_codes: list[dict]


class FindingOut(Schema):
    code: str
    severity: str
    message: str
    fix: str


class CredentialOut(Schema):
    id: int
    graph_id: str
    name: str
    issuer: str
    subject: str
    audiences: list[str]
    description: str
    first_seen: datetime
    last_seen: datetime
    findings: list[FindingOut]


class HomeAppOut(Schema):
    id: int
    name: str
    client_id: str
    home_tenant_id: str
    cloud: str
    graph_synced_at: datetime | None
    status: str
    findings: list[FindingOut]
    credentials: list[CredentialOut]


class AuditEventOut(Schema):
    seq: int
    at: datetime
    actor_kind: str
    actor_id: str
    actor_label: str
    action: str
    target_type: str
    target_id: str
    tenant_id: str
    detail: dict
    ip: str | None
    hash: str


def page_of(item):
    """A cursor-paginated list of `item`: follow `next_cursor` until it is null."""

    class Page(Schema):
        items: list[item]
        next_cursor: str | None

    Page.__name__ = f"{item.__name__.removesuffix('Out')}Page"
    return Page
