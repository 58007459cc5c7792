"""Suite-wide test setup."""

import pytest


@pytest.fixture(autouse=True)
def _empty_cache():
    # The API's request limits count in the cache: each test starts with none spent.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _english_admin(settings):
    # Tests assert on English messages; the Russian catalogue has its own test.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def celery_eager():
    """Run queued tasks in-process for this test, whatever broker CI configured.

    For tests of what a task does; tests of queueing itself run a real worker
    (see `celery_worker`).
    """
    from pharmacrm.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (a thread in this process) consuming from the configured broker.

    Skipped without a broker (CELERY_BROKER_URL): the embedded default runs tasks eagerly.
    Tasks see committed data only, hence the transactional database.
    """
    from celery.contrib.testing.worker import start_worker
    from django.db import connection

    from pharmacrm.celery import app

    if app.conf.task_always_eager:
        pytest.skip("needs a broker: set CELERY_BROKER_URL")
    if connection.vendor == "sqlite":
        pytest.skip("a worker thread cannot share SQLite's in-memory test database")
    app.control.purge()  # nothing left over from earlier runs
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app


@pytest.fixture
def api(db):
    """`api(*scopes)`: a DRF test client authenticated as a new API client with those scopes
    (`api.client_row` is the ApiClient)."""
    from rest_framework.test import APIClient

    from pharmacrm.api.models import ApiClient

    def make(*scopes: str, name: str | None = None, kind: str = "other") -> APIClient:
        row = ApiClient(
            name=name or f"test-{ApiClient.objects.count() + 1}", scopes=list(scopes), kind=kind
        )
        key = row.new_key()
        row.save()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.client_row = row
        client.token = key
        return client

    return make


@pytest.fixture
def channel(api):
    """`channel(kind, *scopes)`: an API client of that kind (app, site, pos, contact_centre):
    the channel its writes are recorded under."""

    def make(kind: str, *scopes: str):
        return api(*scopes, kind=kind)

    return make


@pytest.fixture
def marketer_client(client, db):
    """The test client logged in as a member of "Marketers"."""
    from customers.tests.factories import staff_client

    return staff_client(client, "Marketers")


@pytest.fixture
def manager_client(client, db):
    """The test client logged in as a member of "Managers"."""
    from customers.tests.factories import staff_client

    return staff_client(client, "Managers")
