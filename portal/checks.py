"""Deploy checks of our own (`manage.py check --deploy`)."""
from django.conf import settings
from django.core.checks import Error, Tags, register

# Backends whose entries live in one process: rate limits and shared discovery documents would be per worker.
PER_PROCESS_CACHES = {"django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"}


@register(Tags.caches, deploy=True)
def shared_cache_check(app_configs, **kwargs):
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or backend not in PER_PROCESS_CACHES:
        return []
    return [Error(
        f"The default cache ({backend}) lives in each process: with several gunicorn workers the consent rate limit "
        "and the login throttle count per process, letting through a multiple of their limit.",
        hint="Set REDIS_CACHE_URL (e.g. redis://redis:6379/1) to share the cache between processes.",
        id="portal.E001",
    )]
