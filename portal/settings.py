"""Settings for the onboarding portal, read from the environment with embedded defaults (SQLite, a filesystem broker)."""
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.env import env, env_bool, env_float, env_int, env_list, install_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (50+ random characters) or set DJANGO_DEBUG=1 for development."
        )
    # Never a constant (anyone could sign consent-progress URLs or sessions against a debug install): a random key
    # made once per install, kept in var/ with mode 600.
    SECRET_KEY = install_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "portal",
    "exchange",
    "onboarding",
    "signin",
    "api",
    "console",
    "ops",
]

MIDDLEWARE = [
    "portal.health.HealthProbeMiddleware",  # /healthz and /readyz, before the scheme and host checks
    "ops.views.MetricsMiddleware",  # /metrics for Prometheus (allow-list or bearer token), likewise
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.sessions.session_slide",  # the idle expiry slides (at most one session write a minute)
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "signin.middleware.session_max_age",  # staff sessions end at their maximum age
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.headers.SecurityHeadersMiddleware",  # CSP, Permissions-Policy, no-store for signed-in users
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.roles.context_processor",
                "signin.views.context_processor",
                "portal.context_processors.branding",
                "exchange.context_processors.outages",
                "exchange.context_processors.emergency_stop",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# One URL for every backend: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so the web process and workers queue instead of
    # failing with "database is locked", and the audit chain's read-then-append cannot interleave.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file (not :memory:) so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password sign-in goes through signin's backend (break-glass policy); directory sign-ins log in with the second.
AUTHENTICATION_BACKENDS = ["signin.backends.PasswordBackend", "signin.backends.DirectoryBackend"]
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 5)  # failed sign-ins of one account per window
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)  # from one address (IPv6: /64), any account
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 3600)  # or until an admin unlocks it
LOGIN_URL = "portal:login"
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"  # our 403 page, audited (Django's own has inline style)
LOGIN_REDIRECT_URL = "console:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security: everything `check --deploy` asks for, on unless debugging; the proxy header is for a TLS-terminating proxy.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
# Trusted only when a TLS-terminating proxy that sets (and overwrites) X-Forwarded-Proto is in front: otherwise any
# client could claim HTTPS.
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# Idle timeout: a staff session ends after this long without a request (the expiry slides with the requests, saved at
# most once a minute: portal.sessions).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 8 * 60) * 60
SESSION_ENGINE = "portal.sessions"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Celery: JSON only, late acks with prefetch 1 (tasks are idempotent), time limits, no result backend: job state
# lives in our own tables.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
CELERY_FS_DIR = Path(env("CELERY_FS_DIR", str(VAR_DIR / "celery")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_FS_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FS_DIR / "queue"),
        "data_folder_out": str(CELERY_FS_DIR / "queue"),
        "processed_folder": str(CELERY_FS_DIR / "processed"),
        "control_folder": str(CELERY_FS_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 150)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless DB_REUSE_MAX is set: a
# new PostgreSQL connection per token test. portal/celery.py applies Django's own rule (CONN_MAX_AGE, broken
# connections) around each task instead; this only bounds how many tasks one connection may serve.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 5000)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}  # filled below, once the intervals are read
CELERY_TIMEZONE = "UTC"

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

# Django's cache (the consent page's rate limit): Redis when REDIS_CACHE_URL is set, else in-process memory.
CACHES = {"default": {"BACKEND": "portal.cache.PortalRedisCache", "LOCATION": env("REDIS_CACHE_URL")}
          if env("REDIS_CACHE_URL") else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

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
