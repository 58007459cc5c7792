"""seed: ``manage.py seed_demo`` into a fresh database, against a bare COPY of the same rows.

Measured: the wall time of ``seed_demo`` for the scale's customers (a child process, so that its
peak memory is its own: ``RUSAGE_CHILDREN`` maxrss, the largest of its processes), into a database
just created and migrated. Baseline: the same rows, written to files beforehand (not timed),
loaded with plain ``COPY ... FROM STDIN`` — one stream per table, one table after the other — into
empty tables ``LIKE`` the originals (defaults and NOT NULL, no indexes or constraints). The ratio
says what generating the rows, using both cores and rebuilding every index and constraint costs
on top of the database's raw load speed.

The dataset this leaves behind is the scale's dataset for the other benchmarks. At ``small`` and
``full`` scale an existing complete dataset is kept (and ``seed`` not re-measured) unless
``--reseed`` is given.
"""

from __future__ import annotations

import re
import resource
import shutil
import time

from bench.harness import Context, Result

ORDER = 0
DESCRIPTION = "seed_demo into a fresh database vs a bare COPY of the same rows"
TARGET_SECONDS = 15 * 60  # for 1,000,000 customers (the "Runnable foundation" issue)
TARGET_SCALE = "full"


def run(ctx: Context) -> list[Result]:
    if ctx.scale != "ci" and not ctx.reseed and ctx.dataset() is not None:
        print("   The dataset is loaded already: seed not re-measured (--reseed to measure it).")
        return []

    import datetime as dt

    print("   Recreating the database (empty, migrated)...")
    ctx.recreate_database()
    as_of = ctx.started.replace(microsecond=0) - dt.timedelta(minutes=1)
    began = time.perf_counter()
    completed = ctx.seed(as_of)
    seconds = time.perf_counter() - began
    # The seed process is this process's first child: the largest child is one of its processes.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if completed.returncode != 0:
        raise RuntimeError(f"seed_demo failed with exit code {completed.returncode}")
    ctx.mark_dataset(as_of)
    ctx.reseed = False
    rows = ctx.table_counts()
    total = sum(rows.values())
    baseline = _bare_copy(ctx, as_of, rows)

    size = (
        f"{ctx.customers:,} customers, {rows['customers_purchase']:,} purchases, "
        f"{rows['customers_purchaseline']:,} purchase lines ({total:,} rows in "
        f"{len(rows)} tables); {_bytes(baseline['bytes'])} of COPY text"
    )
    applies = ctx.scale == TARGET_SCALE
    notes = [
        f"seed_demo: {total / seconds:,.0f} rows/s; {_phases(completed.stdout)}.",
        f"Bare COPY: {total / baseline['seconds']:,.0f} rows/s, one stream, tables one after "
        "another, no indexes or constraints; the files were written beforehand (not timed).",
        f"Peak memory: {_memory(completed.stdout)}. PostgreSQL's memory is not counted.",
    ]
    if not applies:
        notes.append("The 15-minute target is stated for 1,000,000 customers (full scale).")
    return [
        Result(
            name="seed_demo load time",
            value=seconds,
            unit="s",
            baseline_name="bare COPY of the same rows",
            baseline_value=baseline["seconds"],
            data_size=size,
            target="< 15 min for 1,000,000 customers",
            passed=(seconds < TARGET_SECONDS) if applies else None,
            notes=notes,
        ),
        Result(
            name="seed_demo peak memory (largest process)",
            value=peak_kb / 1024,
            unit="MB",
            target="flat: independent of the number of customers",
        ),
    ]


def _bare_copy(ctx: Context, as_of, rows: dict[str, int]) -> dict:
    """Write the dataset's rows to files, then time plain COPY of them into bare tables."""
    from customers.demo import parallel, pgload
    from customers.demo.service import copy_targets, spec_for_files

    targets = copy_targets()
    spec = spec_for_files(customers=ctx.customers, seed=_dataset_seed(), as_of=as_of)
    directory = ctx.data_dir / f"seed_{ctx.scale}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    conn_params = ctx.conn_params()
    try:
        print("   Writing the same rows to files (not timed)...")
        stats = parallel.run(spec, parallel.FileTarget(str(directory)), workers=2)
        written = {targets[t][0]: n for t, n in stats.rows.items()}
        if written != rows:  # the baseline must load exactly what seed_demo loaded
            raise RuntimeError(f"files hold other rows than the database: {written} != {rows}")
        size = sum(path.stat().st_size for path in directory.iterdir())
        with pgload.session(conn_params) as cursor:
            for table, _columns in targets.values():
                cursor.execute(f'DROP TABLE IF EXISTS "bench_copy_{table}"')
                cursor.execute(
                    f'CREATE TABLE "bench_copy_{table}" (LIKE "{table}" INCLUDING DEFAULTS)'
                )
            cursor.execute("CHECKPOINT")  # start from the same clean state as seed_demo did
            print("   Bare COPY...")
            began = time.perf_counter()
            for logical, (table, columns) in targets.items():
                names = ", ".join(f'"{c}"' for c in columns)
                cursor.execute("BEGIN")
                for path in sorted(directory.glob(f"{logical}.*.copy")):
                    with path.open("rb") as data:
                        cursor.copy_expert(
                            f'COPY "bench_copy_{table}" ({names}) FROM STDIN', data, size=1 << 20
                        )
                cursor.execute("COMMIT")
            seconds = time.perf_counter() - began
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        with pgload.session(conn_params) as cursor:
            for table, _columns in targets.values():
                cursor.execute(f'DROP TABLE IF EXISTS "bench_copy_{table}"')
    return {"seconds": seconds, "bytes": size}


def _bytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _dataset_seed() -> int:
    from bench.harness import DATASET_SEED

    return DATASET_SEED


def _phases(output: str) -> str:
    match = re.search(r"phases: (.+)", output)
    return f"phases {match.group(1).strip()}" if match else "phases not reported"


def _memory(output: str) -> str:
    match = re.search(r"peak memory: this process (\d+) MB(?:; workers ([\d, ]+) MB)?", output)
    if not match:
        return "not reported"
    parent = int(match.group(1))
    workers = [int(w) for w in (match.group(2) or "").replace(" ", "").split(",") if w]
    listed = " + ".join(f"{w} MB" for w in workers)
    total = parent + sum(workers)
    if not workers:
        return f"seed_demo {parent} MB"
    return f"seed_demo {parent} MB + worker processes {listed} = {total} MB in all"
