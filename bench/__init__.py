"""PharmaCRM benchmarks: ``python -m bench --scale ci|small|full [--only NAME]`` (``make bench``).

Each benchmark is a module ``bench/bench_<name>.py`` with ``run(ctx: Context) -> list[Result]``
(and optionally ``ORDER``, lower runs first, and ``DESCRIPTION``). The harness (``harness``) gives
it a PostgreSQL database per scale with the demo dataset loaded (``ctx.ensure_dataset()``), and
writes every result with its baseline, ratio and target into ``BENCHMARKS.md``.
"""
