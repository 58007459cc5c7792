"""Suite-wide test setup."""

import pytest


@pytest.fixture(autouse=True)
def _english_admin(settings):
    # Tests assert on English messages; the Russian catalogue has its own test.
    settings.LANGUAGE_CODE = "en"
