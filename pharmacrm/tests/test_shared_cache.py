"""Versioned configuration in the shared cache (Redis when CACHE_URL names it, else Django's
cache): each process keeps its copies, and checks their versions once per request."""

import uuid

import pytest

from pharmacrm import shared_cache
from pharmacrm.shared_cache import PREFIX, config_cached


@pytest.fixture
def reads(monkeypatch):
    """The version reads made: one list of names per round trip."""
    calls = []
    real = shared_cache._versions

    def counted(names):
        calls.append(list(names))
        return real(names)

    monkeypatch.setattr(shared_cache, "_versions", counted)
    monkeypatch.setattr(shared_cache, "_local", {})
    return calls


def in_request(work):
    shared_cache._request_started()
    try:
        return work()
    finally:
        shared_cache._request_finished()


def loads(log, name, value):
    def load():
        log.append(name)
        return value

    return load


def test_a_request_checks_every_configuration_the_process_holds_in_one_read(reads):
    log = []
    a, b = f"test-a-{uuid.uuid4().hex}", f"test-b-{uuid.uuid4().hex}"
    assert config_cached(a, loads(log, a, 1)) == 1  # outside a request: each use checks
    assert config_cached(b, loads(log, b, 2)) == 2
    reads.clear()

    def request():
        return config_cached(a, loads(log, a, 1)), config_cached(b, loads(log, b, 2))

    assert in_request(request) == (1, 2)
    assert reads == [sorted([a, b])]  # one round trip for both
    assert log == [a, b]  # loaded once each, before the request

    # Another process changes b: the next request sees it, and reloads b only.
    if shared_cache.redis_client() is not None:
        shared_cache.redis_client().set(f"{PREFIX}version:{b}", uuid.uuid4().hex)
    else:
        from django.core.cache import cache

        cache.set(f"{PREFIX}version:{b}", uuid.uuid4().hex, None)
    reads.clear()
    assert in_request(lambda: (config_cached(b, loads(log, b, 3)), config_cached(a, None))) == (
        3,
        1,
    )
    assert reads == [sorted([a, b])]
    assert log == [a, b, b]
