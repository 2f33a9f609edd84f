"""Requests per key and minute, counted in the shared cache: the one fixed-window counter behind every rate limit
(the consent landing page, sign-in with Microsoft, the API's token exchange)."""
import time
from dataclasses import dataclass

from django.core.cache import cache

WINDOW_SECONDS = 60
KEY_TIMEOUT_SECONDS = 2 * WINDOW_SECONDS  # a window's counter outlives the window, never the next one's


@dataclass(frozen=True)
class RateLimitHit:
    count: int  # requests in this window, this one included
    limit: int
    retry_after: int  # seconds until the window ends (at least 1)

    @property
    def refused(self) -> bool:
        return self.count > self.limit

    @property
    def first_refusal(self) -> bool:
        """The first refused request of its window: the one to audit (a flood must not fill the trail)."""
        return self.count == self.limit + 1


def rate_limit_hit(*, scope: str, key: str, limit: int) -> RateLimitHit:
    """Count one request of `key` in `scope` for the current window."""
    now = time.time()
    cache_key = f"rl:{scope}:{key}:{int(now // WINDOW_SECONDS)}"
    cache.add(cache_key, 0, timeout=KEY_TIMEOUT_SECONDS)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=KEY_TIMEOUT_SECONDS)
        count = 1
    return RateLimitHit(count=count, limit=limit, retry_after=max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS)))
