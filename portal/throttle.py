"""Sign-in throttling on the shared cache (Redis in production): failed sign-ins are counted per account and per client
address within a window; at a limit that account or address is locked for a while, or until an admin unlocks it."""
import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

ACCOUNT, ADDRESS = "account", "address"


@dataclass(frozen=True)
class Lock:
    scope: str  # ACCOUNT or ADDRESS
    value: str  # the username (as typed, folded) or the address
    failures: int
    until: datetime

    @property
    def seconds_left(self) -> int:
        return max(1, int((self.until - timezone.now()).total_seconds()))

    @property
    def message(self) -> str:
        when = f"after {self.until:%H:%M} UTC"
        if self.scope == ACCOUNT:
            return (f"This account is locked after {self.failures} failed sign-ins. Try again {when}, or ask an "
                    "admin to unlock it.")
        return (f"Sign-in from your network address is locked after {self.failures} failed sign-ins. Try again "
                f"{when}, or ask an admin to unlock it.")


@dataclass
class Failure:
    """What one failed sign-in changed: whether it was the account's first in its window, and the locks it set."""
    first_of_account: bool = False
    locks: list[Lock] = field(default_factory=list)


def account_of(username) -> str:
    # Folded: "Ada" and "ada" share one counter (stricter than the case-sensitive usernames themselves).
    return str(username or "").strip().lower()[:150]


def address_of(ip) -> str:
    """The address counted: an IPv6 client by its /64 (one host usually holds a whole /64), an IPv4 one as it is."""
    try:
        address = ipaddress.ip_address(str(ip or "").strip())
    except ValueError:
        return str(ip or "")[:64]
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _key(kind: str, scope: str, value: str) -> str:
    return f"login-{kind}:{scope}:{hashlib.sha256(value.encode(errors='replace')).hexdigest()[:40]}"


def _scopes(username, ip) -> list[tuple[str, str]]:
    return [(scope, value) for scope, value in ((ACCOUNT, account_of(username)), (ADDRESS, address_of(ip))) if value]


def login_lock(*, username, ip) -> Lock | None:
    """The lock that refuses a sign-in of this account from this address now, if any (the account's first)."""
    scopes = _scopes(username, ip)
    found = cache.get_many([_key("lock", scope, value) for scope, value in scopes])
    for scope, value in scopes:
        lock = found.get(_key("lock", scope, value))
        if lock:
            return Lock(scope, value, lock["failures"], datetime.fromtimestamp(lock["until"], UTC))
    return None


def login_failure_count(*, username, ip) -> Failure:
    """Count a failed sign-in for the account and the address; lock whichever reached its limit (exactly once: the
    lock is added, never overwritten, so concurrent failures set and report it once)."""
    window, lockout = settings.LOGIN_FAILURE_WINDOW_SECONDS, settings.LOGIN_LOCKOUT_SECONDS
    limits = {ACCOUNT: settings.LOGIN_ACCOUNT_FAILURE_LIMIT, ADDRESS: settings.LOGIN_ADDRESS_FAILURE_LIMIT}
    result = Failure()
    for scope, value in _scopes(username, ip):
        if not limits[scope]:
            continue  # 0: that limit is off (an address limit behind a proxy that hides client addresses)
        key = _key("failures", scope, value)
        cache.add(key, 0, timeout=window)  # the window starts at the first failure
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        if scope == ACCOUNT and count == 1:
            result.first_of_account = True
        if count >= limits[scope]:
            until = timezone.now() + timedelta(seconds=lockout)
            if cache.add(_key("lock", scope, value), {"failures": count, "until": until.timestamp()}, timeout=lockout):
                cache.delete(key)  # counting starts afresh once the lock ends
                result.locks.append(Lock(scope, value, count, until))
    return result


def login_success(*, username) -> None:
    """A correct password clears the account's failures (not the address's: one good account does not excuse a
    spray from the same address)."""
    cache.delete(_key("failures", ACCOUNT, account_of(username)))


def login_unlock_cache(target: str) -> list[str]:
    """Clear the lock and failures of `target` as an account and, when it is an IP address, as an address. Returns
    the scopes that were locked."""
    text = target.strip()
    scopes = [(ACCOUNT, account_of(text))]
    try:
        scopes.append((ADDRESS, address_of(ipaddress.ip_address(text))))
    except ValueError:
        try:  # an IPv6 /64, as the audit trail names it
            scopes.append((ADDRESS, str(ipaddress.ip_network(text, strict=False))))
        except ValueError:
            pass
    locked = [scope for scope, value in scopes if cache.get(_key("lock", scope, value))]
    cache.delete_many([_key(kind, scope, value) for scope, value in scopes for kind in ("lock", "failures")])
    return locked


def lock_active(*, scope: str, value: str) -> bool:
    return cache.get(_key("lock", scope, value)) is not None
