"""The shared cache as the hot paths use it: one long-lived Redis client per process when the
default cache is Redis (`CACHE_URL`), Django's cache API otherwise, and version tokens that let
every web worker keep configuration in memory yet see an admin's change on its next request.

Django's RedisCache builds a client and pickles every value on each call: fine for pages, too
slow for something asked on every API request (the request limit, the configuration's version).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import request_finished, request_started, setting_changed
from django.db import transaction

REDIS_BACKEND = "django.core.cache.backends.redis.RedisCache"
PREFIX = "pharmacrm:"
T = TypeVar("T")

_clients: dict[tuple[int, str], redis.Redis] = {}
_lock = threading.Lock()


def redis_client() -> redis.Redis | None:
    """The Redis server of the default cache, or None when the default cache is not Redis.
    One client (and connection pool) per process and location: gunicorn forks its workers, and
    a connection must never be shared across a fork."""
    config = settings.CACHES.get("default", {})
    if config.get("BACKEND") != REDIS_BACKEND:
        return None
    location = config["LOCATION"]
    if isinstance(location, list | tuple):
        location = location[0]  # the primary: counters and versions are written
    key = (os.getpid(), location)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = redis.Redis.from_url(location)
    return client


def _forget_clients(*, setting: str, **kwargs) -> None:
    if setting == "CACHES":
        _clients.clear()
        _local.clear()


setting_changed.connect(_forget_clients)


# -- versioned configuration -----------------------------------------------------------------

# name -> (version token, value): this process's copies.
_local: dict[str, tuple[bytes | str, object]] = {}
# Inside a request: the versions it has checked (one cache read per configuration and request,
# and one consistent configuration throughout it). Outside requests (tasks, commands, shells)
# every use checks.
_request = threading.local()


def _request_started(**kwargs) -> None:
    _request.versions = {}


def _request_finished(**kwargs) -> None:
    _request.versions = None


request_started.connect(_request_started, dispatch_uid="pharmacrm.shared_cache.started")
request_finished.connect(_request_finished, dispatch_uid="pharmacrm.shared_cache.finished")


def config_version(name: str) -> bytes | str:
    """The current version token of configuration `name`. A missing token (a flushed or
    restarted cache) is replaced by a fresh one, so nobody trusts a copy older than the flush."""
    return _versions([name])[name]


def _versions(names: list[str]) -> dict[str, bytes | str]:
    """config_version of each name, in one round trip (MGET) when every token is there."""
    keys = [f"{PREFIX}version:{name}" for name in names]
    client = redis_client()
    if client is not None:
        tokens = client.mget(keys)
        for i, token in enumerate(tokens):
            if token is None:
                client.set(keys[i], uuid.uuid4().hex, nx=True)
                tokens[i] = client.get(keys[i])
        return dict(zip(names, tokens, strict=True))
    found = cache.get_many(keys)
    versions = {}
    for name, key in zip(names, keys, strict=True):
        token = found.get(key)
        if token is None:
            cache.add(key, uuid.uuid4().hex, None)
            token = cache.get(key)
        versions[name] = token
    return versions


def config_changed(name: str) -> None:
    """Every process reloads configuration `name` on its next use. Call when it is written:
    now (this transaction's later reads see the change) and again once the transaction commits
    (a worker that reloaded in between read the rows as they were before the commit)."""
    _bump(name)
    transaction.on_commit(lambda: _bump(name))


def _bump(name: str) -> None:
    key = f"{PREFIX}version:{name}"
    token = uuid.uuid4().hex
    client = redis_client()
    if client is not None:
        client.set(key, token)
    else:
        cache.set(key, token, None)
    _local.pop(name, None)
    checked = getattr(_request, "versions", None)
    if checked:
        checked.pop(name, None)


def config_cached(name: str, load: Callable[[], T]) -> T:
    """Configuration `name` as `load()` gives it, loaded again only when its version changed
    (one cache read per request, or per call outside requests)."""
    checked = getattr(_request, "versions", None)
    if checked is None:
        version = config_version(name)
    else:
        version = checked.get(name)
        if version is None:
            # A request's first use reads every configuration this process has used: one
            # round trip, not one per configuration (an order asks for the API clients' and
            # the loyalty rules').
            checked.update(_versions(sorted({name, *_local} - checked.keys())))
            version = checked[name]
    held = _local.get(name)
    if held is not None and held[0] == version:
        return held[1]  # type: ignore[return-value]
    value = load()
    _local[name] = (version, value)
    return value
