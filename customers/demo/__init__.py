"""Demo data for PharmaCRM: a deterministic generator of a pharmacy chain's customers and purchases.

Layout (the generator side imports no Django, so that worker processes start fast and stay lean):

- ``catalogue``: the static vocabulary — cities, names, streets, the product assortment;
- ``generator``: pure Python; turns a ``Spec`` into PostgreSQL ``COPY`` text, block by block;
- ``parallel``: runs the generator in worker processes (rows streamed to ``COPY`` or to files);
- ``pgload``: PostgreSQL schema work around a bulk load (drop / restore indexes and constraints);
- ``service``: the Django side — checks, stores and products, the load itself, the summary
  (``demo_seed`` is what ``manage.py seed_demo`` calls).
"""
