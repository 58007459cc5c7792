"""Fixtures shared by the loyalty tests."""

import pytest

from customers.tests.factories import ProductFactory


@pytest.fixture
def products():
    """Two ordinary products and a prescription-only one, by name."""
    return {
        "nurofen": ProductFactory(sku="4600000000011"),
        "mask": ProductFactory(sku="4600000000028"),
        "rx": ProductFactory(sku="4600000000035", prescription_only=True),
    }
