"""Settings for the onboarding portal, read from the environment with embedded defaults (SQLite, a filesystem broker)."""
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env, env_bool, env_float, env_int, env_list

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
    SECRET_KEY = "insecure-development-key-only-used-when-DJANGO_DEBUG-is-1"

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
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
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
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

# Django's cache (the consent page's rate limit): Redis when REDIS_CACHE_URL is set, else in-process memory.
CACHES = {"default": {"BACKEND": "portal.cache.PortalRedisCache", "LOCATION": env("REDIS_CACHE_URL")}
          if env("REDIS_CACHE_URL") else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BEAT_SCHEDULE.update({
    "token-test-sweep": {"task": "exchange.sweep_scheduled", "schedule": SWEEP_INTERVAL_MINUTES * 60},
    "token-test-reaper": {"task": "exchange.token_tests_reap", "schedule": REAPER_INTERVAL_SECONDS},
    "fic-inventory-sync": {"task": "exchange.fic_inventory_sync_all", "schedule": FIC_SYNC_INTERVAL_MINUTES * 60},
})
