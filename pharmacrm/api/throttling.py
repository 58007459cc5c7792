"""Per-client request limits (ApiClient.throttle_rate), counted in the shared cache.

A fixed window per client: one counter per (client, window), incremented on every request and
expiring with its window. On Redis that is one round trip (INCR and EXPIRE pipelined on the
process's long-lived client); DRF's SimpleRateThrottle instead read and rewrote a list of every
request's timestamp in the window (6,000 of them at 6000/min) through a new client each time. A
client may burst up to twice its rate across a window boundary: a limit, not a meter.
"""

from __future__ import annotations

import functools
import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from pharmacrm.shared_cache import PREFIX, redis_client

from .auth import ClientUser
from .models import DEFAULT_RATE

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.lru_cache(maxsize=256)
def parse_rate(rate: str) -> tuple[int, int]:
    """ "6000/min" -> (6000, 60): requests and the window in seconds (the period's first letter
    counts: s, m, h, d). Raises ValueError for anything else."""
    number, sep, period = rate.strip().partition("/")
    seconds = PERIODS.get(period.strip()[:1].lower())
    if not sep or seconds is None or not number.strip().isdigit():
        raise ValueError(f"“{rate}” is not a rate like 6000/min.")
    return int(number), seconds


class ClientRateThrottle(BaseThrottle):
    """At most the client's `throttle_rate`; 429 with Retry-After (the window's rest) beyond."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if not isinstance(user, ClientUser):
            return True  # unauthenticated requests are refused before they cost anything
        try:
            limit, seconds = parse_rate(user.client.throttle_rate)
        except ValueError:  # a rate typed wrong in the admin: the default, not a 500
            limit, seconds = parse_rate(DEFAULT_RATE)
        now = time.time()
        window = int(now // seconds)
        key = f"{PREFIX}throttle:{user.client.pk}:{seconds}:{window}"
        if count_request(key, seconds + 1) <= limit:
            return True
        self.retry_after = (window + 1) * seconds - now
        return False

    def wait(self) -> float | None:
        return self.retry_after


def count_request(key: str, ttl: int) -> int:
    """Adds one to the counter `key` (created expiring in `ttl` seconds); the new count."""
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
        return pipe.execute()[0]
    # Another cache (one process's memory in development): add-then-incr never loses a count.
    if cache.add(key, 1, ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, ttl)
        return 1
