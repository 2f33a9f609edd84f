"""The shared cache on Redis: Django's backend with one redis.Redis client per connection pool."""
import pytest
from django.conf import settings
from django.core.cache import cache, caches

redis_only = pytest.mark.skipif("Redis" not in settings.CACHES["default"]["BACKEND"] or
                                not settings.CACHES["default"].get("LOCATION"),
                                reason="REDIS_CACHE_URL is not set (the embedded default is a per-process cache)")


@redis_only
@pytest.mark.django_db
def test_the_redis_cache_reuses_one_client_and_round_trips_values():
    from portal.cache import PortalRedisCache

    assert isinstance(caches["default"], PortalRedisCache)
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is client  # Django's own backend builds a new one on every call
    cache.set("portal-cache-test", {"issuer": "https://login.microsoftonline.com/x/v2.0"}, 30)
    assert cache.get("portal-cache-test") == {"issuer": "https://login.microsoftonline.com/x/v2.0"}
    assert cache.add("portal-cache-test-n", 1, 30) and cache.incr("portal-cache-test-n") == 2
    assert client.ttl(cache.make_key("portal-cache-test")) > 0  # the same client reaches the same server and db
