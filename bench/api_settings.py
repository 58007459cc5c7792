"""Settings of the API benchmark's gunicorn (bench/bench_api.py), never of the product: the
project's own settings with a bench-only URLconf, which adds the bare lookup view the DRF
endpoint is compared to (bench/api_urls.py)."""

from pharmacrm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
