"""Fixtures shared by the customers tests."""

import pytest

from customers.tests.pos_xml_builders import write_pos_file


@pytest.fixture
def pos_file(tmp_path):
    """pos_file(purchases, store=..., name=...): a POS export file of those purchases."""

    def build(purchases, store="A-017", name="export.xml"):
        path = tmp_path / name
        write_pos_file(path, store, purchases)
        return path

    return build
