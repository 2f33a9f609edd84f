"""The product's own settings: Microsoft's endpoints, token tests and sweeps, the circuit breaker, consent links, the
audit trail, login throttling, staff sign-in with Entra ID, the API, alerts and metrics, exports, retention."""
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.env import env, env_bool, env_float, env_int, env_list, install_secret
from portal.settings.framework import CELERY_BEAT_SCHEDULE, DEBUG, VAR_DIR

# Microsoft endpoints. ENTRA_BASE_URL, when set, sends every login/Graph/ARM request of every cloud there (the
# emulator in the demo and tests); ENTRA_CA_BUNDLE is the CA to trust for it. IMDS_URL replaces 169.254.169.254.
ENTRA_BASE_URL = env("ENTRA_BASE_URL", "").rstrip("/")
ENTRA_CA_BUNDLE = env("ENTRA_CA_BUNDLE", "")
IMDS_URL = env("IMDS_URL", "http://169.254.169.254").rstrip("/")
ENTRA_HTTP_TIMEOUT = env_float("ENTRA_HTTP_TIMEOUT", 10.0)
ENTRA_CLIENTS_MAX = env_int("ENTRA_CLIENTS_MAX", 2000)  # MSAL clients (one per tenant) kept per worker process

# Token tests: bounded retries with capped exponential backoff; the reaper's patience; sweeps.
TOKEN_TEST_QUEUE = env("TOKEN_TEST_QUEUE", "celery")  # a queue of their own lets sweeps scale on separate workers
TOKEN_TEST_MAX_ATTEMPTS = env_int("TOKEN_TEST_MAX_ATTEMPTS", 5)
TOKEN_TEST_RETRY_BASE_SECONDS = env_float("TOKEN_TEST_RETRY_BASE_SECONDS", 6.0)  # > MSAL's 5 s replay window
TOKEN_TEST_RETRY_MAX_SECONDS = env_float("TOKEN_TEST_RETRY_MAX_SECONDS", 120.0)
# A running test holds a lease its worker renews every HEARTBEAT seconds while the chain runs; a lease not renewed
# for LEASE seconds is expired (its worker died) and the test is taken over: a killed worker's tests run again
# within LEASE + REAPER_INTERVAL seconds (~11 s), or at once when its message is re-delivered after the lease ends.
TOKEN_TEST_LEASE_SECONDS = env_float("TOKEN_TEST_LEASE_SECONDS", 8.0)
TOKEN_TEST_HEARTBEAT_SECONDS = env_float("TOKEN_TEST_HEARTBEAT_SECONDS", 2.0)
# A queued test whose message is this overdue (lost with a broker's data) is sent again; a duplicate is harmless.
TOKEN_TEST_RESEND_SECONDS = env_float("TOKEN_TEST_RESEND_SECONDS", 60.0)
TOKEN_TEST_PROPAGATION_ATTEMPTS = env_int("TOKEN_TEST_PROPAGATION_ATTEMPTS", 8)
FIC_PROPAGATION_RETRY_SECONDS = env_float("FIC_PROPAGATION_RETRY_SECONDS", 60.0)
FIC_PROPAGATION_MINUTES = env_float("FIC_PROPAGATION_MINUTES", 10.0)  # a new FIC can give 70021 this long
SWEEP_INTERVAL_MINUTES = env_float("SWEEP_INTERVAL_MINUTES", 60.0)
SWEEP_JITTER_SECONDS = env_float("SWEEP_JITTER_SECONDS", 120.0)
# A sweep sends its tests in tasks of this many: one transaction records a whole batch's steps and outcomes.
SWEEP_BATCH_SIZE = env_int("SWEEP_BATCH_SIZE", 20)
# The emergency stop's flag is cached this long: with the shared cache (Redis) a change reaches every process at once;
# a process with a cache of its own (the demo's) reads the row at least this often.
ESTOP_CACHE_SECONDS = env_float("ESTOP_CACHE_SECONDS", 5.0)
# A batch's chains wait on Microsoft side by side, on this many threads of the worker process (not more processes).
TOKEN_TEST_THREADS = env_int("TOKEN_TEST_THREADS", 20)
TOKEN_TEST_BATCH_SECONDS = env_float("TOKEN_TEST_BATCH_SECONDS", 30.0)  # then the rest go out as tasks of their own
REAPER_INTERVAL_SECONDS = env_float("REAPER_INTERVAL_SECONDS", 3.0)
# Circuit breaker per endpoint and cloud (state in the shared cache): it opens when at least BREAKER_MIN_FAILURES
# tenants, and BREAKER_FAILURE_RATIO of the calls, failed transiently on one endpoint within BREAKER_WINDOW_SECONDS.
# While open, tests are held (re-queued, no attempt spent); every BREAKER_PROBE_SECONDS one test probes the endpoint
# and closes the breaker when it succeeds. Held tests that have waited SWEEP_OUTAGE_MAX_MINUTES are finished with
# the outage named as their cause.
BREAKER_WINDOW_SECONDS = env_float("BREAKER_WINDOW_SECONDS", 60.0)
BREAKER_MIN_FAILURES = env_int("BREAKER_MIN_FAILURES", 10)
BREAKER_FAILURE_RATIO = env_float("BREAKER_FAILURE_RATIO", 0.5)
BREAKER_PROBE_SECONDS = env_float("BREAKER_PROBE_SECONDS", 15.0)
SWEEP_OUTAGE_MAX_MINUTES = env_float("SWEEP_OUTAGE_MAX_MINUTES", 30.0)
FIC_SYNC_INTERVAL_MINUTES = env_float("FIC_SYNC_INTERVAL_MINUTES", 30.0)  # the FIC inventory re-read from Graph

# The portal's public address: consent redirect URIs are built from it.
PORTAL_PUBLIC_URL = env("PORTAL_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
PORTAL_BRAND_NAME = env("PORTAL_BRAND_NAME", "Contoso MSSP")
PORTAL_BRAND_LOGO_URL = env("PORTAL_BRAND_LOGO_URL", "")
PORTAL_CONTACT_EMAIL = env("PORTAL_CONTACT_EMAIL", "")  # shown to customers on the consent landing page
CONSENT_LINK_TTL_DAYS = env_int("CONSENT_LINK_TTL_DAYS", 7)
CONSENT_RATE_LIMIT = env_int("CONSENT_RATE_LIMIT", 20)  # consent callbacks per client IP and minute
BULK_IMPORT_MAX_BYTES = env_int("BULK_IMPORT_MAX_BYTES", 1_048_576)  # a bulk-import CSV larger than this is refused
BULK_IMPORT_MAX_ROWS = env_int("BULK_IMPORT_MAX_ROWS", 500)

# The audit trail: events chained by HMAC-SHA256 under AUDIT_KEY (kept out of the database), checkpoints of the
# chain's head signed and appended to files in AUDIT_CHECKPOINT_DIR (separate, append-only storage in production).
AUDIT_KEY = env("AUDIT_KEY", "")
if not AUDIT_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "AUDIT_KEY is not set. Set it (32+ random characters, kept apart from the database) or set DJANGO_DEBUG=1."
        )
    AUDIT_KEY = install_secret(VAR_DIR / "audit-key")  # a random key per development install
elif len(AUDIT_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_KEY is too short: use 32 or more random characters.")
AUDIT_CHECKPOINT_DIR = Path(env("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit-checkpoints")))
AUDIT_CHECKPOINT_INTERVAL_MINUTES = env_float("AUDIT_CHECKPOINT_INTERVAL_MINUTES", 5.0)
AUDIT_REFUSAL_WINDOW_SECONDS = env_int("AUDIT_REFUSAL_WINDOW_SECONDS", 600)  # refused (403) requests: one event per
# user, page and window; the count of the rest rides on the next window's event

CELERY_BEAT_SCHEDULE.update({
    "audit-checkpoint": {"task": "portal.audit_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60},
    "token-test-sweep": {"task": "onboarding.sweep_scheduled", "schedule": SWEEP_INTERVAL_MINUTES * 60},
    "token-test-reaper": {"task": "exchange.token_tests_reap", "schedule": REAPER_INTERVAL_SECONDS},
    "fic-inventory-sync": {"task": "exchange.fic_inventory_sync_all", "schedule": FIC_SYNC_INTERVAL_MINUTES * 60},
})

# Staff sign-in with Microsoft Entra ID (signin/): OpenID Connect, code flow with PKCE, against the MSSP's own tenant.
# Keyless: the web process redeems codes with its managed identity's token (a federated credential on the sign-in
# app), like the workers. Off while ENTRA_SIGNIN_CLIENT_ID is empty.
ENTRA_SIGNIN_CLIENT_ID = env("ENTRA_SIGNIN_CLIENT_ID", "").strip().lower()
ENTRA_SIGNIN_TENANT_ID = env("ENTRA_SIGNIN_TENANT_ID", "").strip().lower()
ENTRA_SIGNIN_CLOUD = env("ENTRA_SIGNIN_CLOUD", "").strip().lower() or "global"
if ENTRA_SIGNIN_CLOUD not in ("global", "usgov", "china"):
    raise ImproperlyConfigured(f"ENTRA_SIGNIN_CLOUD must be global, usgov or china, not {ENTRA_SIGNIN_CLOUD!r}")
ENTRA_SIGNIN_IDENTITY_CLIENT_ID = env("ENTRA_SIGNIN_IDENTITY_CLIENT_ID", "").strip().lower()
if ENTRA_SIGNIN_CLIENT_ID and not (ENTRA_SIGNIN_TENANT_ID and ENTRA_SIGNIN_IDENTITY_CLIENT_ID):
    raise ImproperlyConfigured("ENTRA_SIGNIN_CLIENT_ID is set: set ENTRA_SIGNIN_TENANT_ID (the MSSP's tenant id) and "
                               "ENTRA_SIGNIN_IDENTITY_CLIENT_ID (the web's managed identity) too")
ENTRA_SIGNIN_REDIRECT_URI = env("ENTRA_SIGNIN_REDIRECT_URI", "").strip() or f"{PORTAL_PUBLIC_URL}/signin/callback/"
# App-role values (the `roles` claim) → portal roles; and, as an alternative, group object ids (the `groups` claim).
ENTRA_SIGNIN_ROLE_MAP = env("ENTRA_SIGNIN_ROLE_MAP", "Portal.Viewer=viewer,Portal.Operator=operator,"
                            "Portal.Admin=admin,Portal.Auditor=auditor")
ENTRA_SIGNIN_GROUP_MAP = env("ENTRA_SIGNIN_GROUP_MAP", "")
ENTRA_SIGNIN_REQUIRE_MFA = env_bool("ENTRA_SIGNIN_REQUIRE_MFA", False)  # the ID token's `amr` must say "mfa"
ENTRA_SIGNIN_CLOCK_SKEW_SECONDS = env_int("ENTRA_SIGNIN_CLOCK_SKEW_SECONDS", 120)
SIGNIN_RATE_LIMIT = env_int("SIGNIN_RATE_LIMIT", 30)  # sign-in starts + callbacks per client IP and minute
# Every staff session ends this long after its sign-in (roles are re-read from the directory at the next one).
SIGNIN_SESSION_MAX_AGE_SECONDS = env_int("SIGNIN_SESSION_MAX_AGE_SECONDS", 8 * 3600)
# Local passwords: "on" for everyone, or "break-glass" = only for the superusers named in BREAK_GLASS_USERS.
PASSWORD_SIGNIN = env("PASSWORD_SIGNIN", "").strip().lower() or "on"
if PASSWORD_SIGNIN not in ("on", "break-glass"):
    raise ImproperlyConfigured(f"PASSWORD_SIGNIN must be 'on' or 'break-glass', not {PASSWORD_SIGNIN!r}")
BREAK_GLASS_USERS = env_list("BREAK_GLASS_USERS", "")
# The automation API (api/): workloads exchange their platform token for a portal token (README, "Automation API").
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 600)  # requests per identity (provider + subject) and minute
API_EXCHANGE_RATE_LIMIT = env_int("API_EXCHANGE_RATE_LIMIT", 60)  # exchanges per client address and minute
API_CLOCK_SKEW_SECONDS = env_int("API_CLOCK_SKEW_SECONDS", 60)  # leeway on a workload token's exp/nbf/iat
API_OIDC_TIMEOUT = env_float("API_OIDC_TIMEOUT", 5.0)  # seconds for an issuer's discovery document or JWKS
API_OIDC_MAX_BYTES = env_int("API_OIDC_MAX_BYTES", 256 * 1024)  # larger documents are refused
API_JWKS_TTL_SECONDS = env_int("API_JWKS_TTL_SECONDS", 3600)  # an issuer's keys kept in the shared cache
API_JWKS_REFRESH_SECONDS = env_int("API_JWKS_REFRESH_SECONDS", 30)  # an unknown kid re-reads the keys at most this often
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24)  # how long an Idempotency-Key's answer is replayed
# An API export streams in its request: one that would hold more events than this is refused (page through
# /audit-events, narrow the filters, or use the portal's background export, which has no such limit).
API_EXPORT_MAX_ROWS = env_int("API_EXPORT_MAX_ROWS", 100_000)
CELERY_BEAT_SCHEDULE["api-purge"] = {"task": "api.purge", "schedule": 3600.0}

# Alerts and metrics (ops/, README "Alerts and metrics"). E-mail through Django's mail framework: SMTP when EMAIL_HOST
# is set, else the console (DEBUG) — or any backend named by EMAIL_BACKEND (e.g. the file backend in a demo).
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(EMAIL_HOST))
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = env("EMAIL_BACKEND", "") or ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                                             else "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "portal-alerts@localhost")
ALERTS_WATCH_INTERVAL_SECONDS = env_float("ALERTS_WATCH_INTERVAL_SECONDS", 60.0)  # the state watcher's period
ALERTS_CONSENT_RECENT_MINUTES = env_float("ALERTS_CONSENT_RECENT_MINUTES", 60.0)  # a new tenant's consent is news
ALERTS_OUTAGE_MIN_TENANTS = env_int("ALERTS_OUTAGE_MIN_TENANTS", 10)  # tenants failing transiently in one cloud…
ALERTS_OUTAGE_WINDOW_MINUTES = env_float("ALERTS_OUTAGE_WINDOW_MINUTES", 10.0)  # …within this window = an outage (alert, banner)
ALERTS_DELIVERY_MAX_ATTEMPTS = env_int("ALERTS_DELIVERY_MAX_ATTEMPTS", 6)
ALERTS_RETRY_BASE_SECONDS = env_float("ALERTS_RETRY_BASE_SECONDS", 30.0)  # doubled per attempt…
ALERTS_RETRY_MAX_SECONDS = env_float("ALERTS_RETRY_MAX_SECONDS", 1800.0)  # …up to this
ALERTS_SENDING_LEASE_SECONDS = env_float("ALERTS_SENDING_LEASE_SECONDS", 120.0)  # a stuck "sending" is retried after
ALERTS_WEBHOOK_TIMEOUT = env_float("ALERTS_WEBHOOK_TIMEOUT", 5.0)
ALERTS_WEBHOOK_ALLOW_HTTP = DEBUG  # webhook URLs are https only in production (http for the demo and tests)
ALERTS_DIGEST_HOUR_UTC = env_int("ALERTS_DIGEST_HOUR_UTC", 7)
# /metrics: scrapers from these networks, or (when set) presenting "Authorization: Bearer <METRICS_BEARER_TOKEN>".
METRICS_ALLOWED_CIDRS = env_list("METRICS_ALLOWED_CIDRS", "127.0.0.1/32,::1/128")
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN", "")
METRICS_WINDOW_MINUTES = env_int("METRICS_WINDOW_MINUTES", 15)  # the "recent" window of test and latency metrics
CELERY_BEAT_SCHEDULE.update({
    "alerts-watch": {"task": "ops.alerts_watch", "schedule": ALERTS_WATCH_INTERVAL_SECONDS},
    "alerts-digest": {"task": "ops.digest_send", "schedule": crontab(hour=ALERTS_DIGEST_HOUR_UTC, minute=0)},
})

# Long background jobs (ops/exports.py, portal/verification.py): exports of the audit trail and the token tests, full
# re-verifications of the audit chain. Their queue, and their own time limit (a 1M-row export takes seconds on
# PostgreSQL, minutes on SQLite).
JOBS_QUEUE = env("JOBS_QUEUE", "celery")
JOBS_TIME_LIMIT_SECONDS = env_int("JOBS_TIME_LIMIT_SECONDS", 3600)
EXPORT_DIR = Path(env("EXPORT_DIR", str(VAR_DIR / "exports")))  # export files; each removed after the retention
EXPORT_RETENTION_HOURS = env_float("EXPORT_RETENTION_HOURS", 24.0)
# Retention of token-test details (exchange/services/retention.py): steps of tests older than RETENTION_STEP_DAYS are
# deleted (the test's outcome and diagnosis stay), except each tenant's last RETENTION_KEEP_LAST_TESTS tests and every
# test whose outcome differs from the tenant's previous one. In batches of RETENTION_BATCH_TESTS tests, every
# RETENTION_INTERVAL_MINUTES. Audit events are never deleted (README, "Archiving old audit events").
RETENTION_STEP_DAYS = env_int("RETENTION_STEP_DAYS", 30)
RETENTION_KEEP_LAST_TESTS = env_int("RETENTION_KEEP_LAST_TESTS", 20)
RETENTION_BATCH_TESTS = env_int("RETENTION_BATCH_TESTS", 500)
RETENTION_INTERVAL_MINUTES = env_float("RETENTION_INTERVAL_MINUTES", 60.0)
CELERY_BEAT_SCHEDULE.update({
    "exports-expire": {"task": "ops.exports_expire", "schedule": 900.0},
    "token-test-steps-prune": {"task": "exchange.token_test_steps_prune", "schedule": RETENTION_INTERVAL_MINUTES * 60},
})
