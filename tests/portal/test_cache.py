"""The shared cache on Redis: Django's backend with one redis.Redis client per connection pool."""
import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches

redis_only = pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"] or
                                not settings.CACHES["default"].get("LOCATION"),
                                reason="REDIS_CACHE_URL is not set (the embedded default is a per-process cache)")


@redis_only
@pytest.mark.django_db
def test_the_redis_cache_reuses_one_client_and_round_trips_values(monkeypatch):
    from portal.cache import PortalRedisCache

    assert isinstance(caches["default"], PortalRedisCache)
    cache.set("portal-cache-warm-up", 1, 30)  # the first calls build the client of their pool
    cache.get("portal-cache-warm-up")
    built = []
    original = redis.Redis.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    cache.set("portal-cache-test", {"issuer": "https://login.microsoftonline.com/x/v2.0"}, 30)
    assert cache.get("portal-cache-test") == {"issuer": "https://login.microsoftonline.com/x/v2.0"}
    assert cache.add("portal-cache-test-n", 1, 30) and cache.incr("portal-cache-test-n") == 2
    assert built == []  # Django's own backend builds a new redis.Redis on every call
    assert cache.get("portal-cache-test-n") == 2
