"""The benchmark harness: a PostgreSQL database per scale, the shared demo dataset, BENCHMARKS.md.

Contract for a benchmark module ``bench/bench_<name>.py``:

- ``run(ctx: Context) -> list[Result]``; an empty list means "nothing measured this time" and keeps
  the figures already in BENCHMARKS.md;
- ``ORDER`` (int, default 100): lower runs first (``seed`` is 0: it produces the dataset);
- it calls ``ctx.ensure_dataset()`` when it needs the demo data, and reports every figure with a
  baseline measured in the same run (absolute times move from machine to machine, ratios less so).

Exit status: 1 when a benchmark raised; 2 when a figure missed a target that applies at this
scale (never in CI, ``CI=true``: CI runs the tiny scale to keep the benchmarks working, not to
judge them); 0 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import importlib
import json
import os
import pkgutil
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
DATA_DIR = Path(__file__).resolve().parent / "data"  # git-ignored scratch space
SCALES = {"ci": 2_000, "small": 50_000, "full": 1_000_000}
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pharmacrm_bench"
DATASET_SEED = 2026

HEADER = """# PharmaCRM benchmarks

Figures measured by `python -m bench --scale ci|small|full [--only NAME] [--reseed]`
(`make bench SCALE=...`). The harness rewrites one section per benchmark and scale each time that
benchmark runs at that scale; the other sections stay as they were.

- **Scales**: `ci` — 2,000 customers: CI runs it on every submission so that the benchmarks never
  rot; targets are stated for the full scale and not judged here. `small` — 50,000 customers.
  `full` — 1,000,000 customers, ~10 million purchases, ~25 million purchase lines.
- **Database**: PostgreSQL at `BENCH_DATABASE_URL` (default
  `postgres://postgres@127.0.0.1:5432/pharmacrm_bench`), one database per scale
  (`pharmacrm_bench_ci`, `pharmacrm_bench_small`, `pharmacrm_bench_full`), created and migrated
  when missing. The demo dataset (`seed_demo`, seed 2026) is loaded once per scale and reused by
  later runs; `--reseed` loads it again (and re-measures `seed`, which otherwise only runs on a
  missing or outdated dataset, or at `ci` scale).
- **Reading the figures**: absolute times depend on the machine, so each figure comes with a
  baseline measured in the same run and the ratio of the two. Memory is the peak resident set of
  the Python processes (PostgreSQL's own memory is not included).
- **Adding a benchmark**: a module `bench/bench_<name>.py` with `run(ctx) -> list[Result]`
  (see `bench/harness.py`).
"""


@dataclass
class Result:
    """One measured figure, with what it is compared to."""

    name: str
    value: float
    unit: str  # "s", "MB", "rows/s", ...
    baseline_name: str = ""
    baseline_value: float | None = None
    data_size: str = ""
    target: str = ""
    passed: bool | None = None  # None: no target, or the target does not apply at this scale
    notes: list[str] = field(default_factory=list)
    benchmark: str = ""  # set by the harness

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


@dataclass
class Context:
    """What a benchmark gets: its scale, its database, the dataset on demand."""

    scale: str
    customers: int
    database_url: str
    in_ci: bool
    reseed: bool
    data_dir: Path = DATA_DIR
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    notes: list[str] = field(default_factory=list)

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def conn_params(self, dbname: str | None = None) -> dict:
        """psycopg2.connect keyword arguments for this scale's database (or another one)."""
        url = urlsplit(self.database_url)
        params = {"dbname": dbname or self.database_name, "host": url.hostname or "127.0.0.1"}
        if url.port:
            params["port"] = url.port
        if url.username:
            params["user"] = url.username
        if url.password:
            params["password"] = url.password
        return params

    # --- the database ------------------------------------------------------------------------

    def ensure_database(self) -> None:
        """Create this scale's database when missing, and bring its schema up to date."""
        import psycopg2
        from django.core.management import call_command

        with _server(self) as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database_name])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{self.database_name}"')
                print(f"Created database {self.database_name}.")
        try:
            call_command("migrate", verbosity=0, interactive=False)
        except psycopg2.Error as exc:  # pragma: no cover - reported as the benchmark error
            raise RuntimeError(f"migrating {self.database_name} failed: {exc}") from exc

    def recreate_database(self) -> None:
        """Drop and recreate this scale's database (empty, migrated): for a real, fresh load."""
        from django.db import connections

        connections.close_all()
        with _server(self) as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{self.database_name}"')
        self.ensure_database()

    # --- the dataset -------------------------------------------------------------------------

    def dataset(self) -> dict | None:
        """What the marker says about the dataset loaded in this database, if it is complete."""
        from customers.demo.generator import GENERATOR_VERSION
        from customers.models import Customer

        with _session(self) as cursor:
            cursor.execute("SELECT to_regclass('bench_dataset')")
            if cursor.fetchone()[0] is None:
                return None
            cursor.execute(
                "SELECT customers, seed, generator, as_of, rows FROM bench_dataset "
                "WHERE scale = %s",
                [self.scale],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        customers, seed, generator, as_of, rows = row
        if (customers, seed, generator) != (self.customers, DATASET_SEED, GENERATOR_VERSION):
            return None
        if Customer.objects.count() != customers:  # touched since: not the dataset any more
            return None
        return {"customers": customers, "seed": seed, "as_of": as_of, "rows": rows}

    def ensure_dataset(self) -> dict:
        """The scale's demo dataset: reused when complete, otherwise loaded (not timed)."""
        info = self.dataset()
        if info is not None and not self.reseed:
            return info
        print(f"Loading the {self.scale} dataset ({self.customers:,} customers)...")
        self.recreate_database()
        as_of = self.started.replace(microsecond=0) - dt.timedelta(minutes=1)
        completed = self.seed(as_of)
        if completed.returncode != 0:
            raise RuntimeError(f"seed_demo failed with exit code {completed.returncode}")
        self.mark_dataset(as_of)
        self.reseed = False  # loaded once per run
        return self.dataset() or {}

    def seed(self, as_of: dt.datetime) -> subprocess.CompletedProcess:
        """Run ``manage.py seed_demo`` for this scale in a child process, echoing its output."""
        command = [
            sys.executable,
            "manage.py",
            "seed_demo",
            "--customers",
            str(self.customers),
            "--seed",
            str(DATASET_SEED),
            "--as-of",
            as_of.isoformat(),
        ]
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1"}
        env.setdefault("SECRET_KEY", "bench-only-secret-key")
        lines = []
        with subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            for line in proc.stdout:
                print(f"    | {line}", end="", flush=True)
                lines.append(line)
        return subprocess.CompletedProcess(command, proc.returncode, "".join(lines))

    def mark_dataset(self, as_of: dt.datetime) -> None:
        """Record that this database holds the complete dataset of this scale."""
        from customers.demo.generator import GENERATOR_VERSION

        rows = self.table_counts()
        with _session(self) as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_dataset (scale text PRIMARY KEY, "
                "customers integer NOT NULL, seed integer NOT NULL, generator text NOT NULL, "
                "as_of timestamptz NOT NULL, rows jsonb NOT NULL, "
                "completed_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor.execute(
                "INSERT INTO bench_dataset (scale, customers, seed, generator, as_of, rows) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (scale) DO UPDATE SET "
                "customers = EXCLUDED.customers, seed = EXCLUDED.seed, "
                "generator = EXCLUDED.generator, as_of = EXCLUDED.as_of, rows = EXCLUDED.rows, "
                "completed_at = now()",
                [
                    self.scale,
                    self.customers,
                    DATASET_SEED,
                    GENERATOR_VERSION,
                    as_of,
                    json.dumps(rows),
                ],
            )

    def table_counts(self) -> dict[str, int]:
        """Exact rows per demo table."""
        from customers.demo.service import copy_targets

        counts = {}
        with _session(self) as cursor:
            for table, _columns in copy_targets().values():
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                counts[table] = cursor.fetchone()[0]
        return counts


@contextmanager
def _session(ctx: Context, dbname: str | None = None) -> Iterator:
    """A cursor on an autocommit connection to the scale's database (or another one)."""
    import psycopg2

    conn = psycopg2.connect(**ctx.conn_params(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def _server(ctx: Context):
    """A session on the server's maintenance database, for CREATE / DROP DATABASE."""
    return _session(ctx, "postgres")


# --- machine -------------------------------------------------------------------------------------


def machine(ctx: Context) -> str:
    """Cores, memory, CPU model and PostgreSQL version, in one line."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                break
    except OSError:
        pass
    with _session(ctx) as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0].split()[0]
        cursor.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) "
            "ORDER BY name",
            [list(PG_SETTINGS)],
        )
        server = ", ".join(f"{name} {value}" for name, value in cursor.fetchall())
    return f"{os.cpu_count()} cores ({cpu}){memory}, PostgreSQL {version} ({server})"


# The server settings that move the figures most, printed with every run (README: "PostgreSQL
# settings" gives the ones production and the full-scale figures use).
PG_SETTINGS = ("shared_buffers", "max_wal_size", "synchronous_commit")


# --- BENCHMARKS.md -------------------------------------------------------------------------------

_SECTION = re.compile(r"<!-- bench:(?P<key>[\w-]+:[\w-]+) -->\n.*?<!-- /bench:(?P=key) -->\n", re.S)
_SCALE_RANK = {name: i for i, name in enumerate(SCALES)}


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "s":
        if value >= 120:
            minutes, seconds = divmod(round(value), 60)
            return f"{minutes} min {seconds:02d} s ({value:,.0f} s)"
        return f"{value:,.2f} s" if value < 10 else f"{value:,.1f} s"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def render_section(benchmark: str, ctx: Context, results: list[Result], machine_line: str) -> str:
    """One benchmark at one scale, as the Markdown BENCHMARKS.md keeps between markers."""
    key = f"{benchmark}:{ctx.scale}"
    when = ctx.started.strftime("%Y-%m-%d %H:%M UTC")
    sizes = list(dict.fromkeys(r.data_size for r in results if r.data_size))
    lines = [
        f"<!-- bench:{key} -->",
        f"## {benchmark} — {ctx.scale} scale",
        "",
        f"- **Run**: {when}, {machine_line}",
    ]
    if ctx.in_ci:
        lines.append("- **Where**: CI (targets not judged)")
    for size in sizes:
        lines.append(f"- **Data**: {size}")
    lines += [
        "",
        "| figure | value | baseline | baseline value | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        verdict = {True: "pass", False: "**miss**", None: "—"}[r.passed]
        lines.append(
            f"| {r.name} | {_format(r.value, r.unit)} | {r.baseline_name} | "
            f"{_format(r.baseline_value, r.unit)} | {ratio} | {r.target} | {verdict} |"
        )
    notes = [note for r in results for note in r.notes]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines.append(f"<!-- /bench:{key} -->")
    return "\n".join(lines) + "\n"


def write_report(sections: dict[str, str], order: dict[str, int], path: Path = REPORT) -> None:
    """Replace the given sections in BENCHMARKS.md, keep the others, refresh the header.

    Holds an exclusive lock on the file meanwhile: two runs (say ci and full at once) each keep
    the other's sections.
    """
    path.touch(exist_ok=True)
    with path.open("r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        existing = {m.group("key"): m.group(0) for m in _SECTION.finditer(handle.read())}
        existing.update(sections)

        def rank(key: str) -> tuple:
            benchmark, scale = key.split(":", 1)
            return (order.get(benchmark, 100), benchmark, _SCALE_RANK.get(scale, 99), scale)

        body = "\n".join(existing[key] for key in sorted(existing, key=rank))
        handle.seek(0)
        handle.truncate()
        handle.write(HEADER + "\n" + body)


# --- running -------------------------------------------------------------------------------------


def discover() -> list[tuple[str, ModuleType]]:
    """Every bench_<name> module next to this one, in ORDER, then by name."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"bench.{info.name}")
            found.append((info.name.removeprefix("bench_"), module))
    return sorted(found, key=lambda item: (getattr(item[1], "ORDER", 100), item[0]))


def scale_database_url(scale: str) -> str:
    """BENCH_DATABASE_URL with the scale appended to the database name."""
    url = urlsplit(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
    name = url.path.lstrip("/") or "pharmacrm_bench"
    return urlunsplit(url._replace(path=f"/{name}_{scale}"))


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacrm.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--reseed", action="store_true", help="reload the dataset (and re-measure seed)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    ctx = Context(
        scale=args.scale,
        customers=SCALES[args.scale],
        database_url=scale_database_url(args.scale),
        in_ci=os.environ.get("CI", "").lower() in {"1", "true", "yes"},
        reseed=args.reseed,
    )
    _setup_django(ctx.database_url)
    benchmarks = discover()
    if args.list:
        for name, module in benchmarks:
            print(f"{name:<16} {getattr(module, 'DESCRIPTION', '')}")
        return 0
    wanted = {name for item in args.only for name in item.split(",") if name}
    unknown = wanted - {name for name, _ in benchmarks}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    selected = [(n, m) for n, m in benchmarks if not wanted or n in wanted]

    started = time.perf_counter()
    print(f"Benchmarks at {ctx.scale} scale ({ctx.customers:,} customers) on {ctx.database_name}")
    ctx.ensure_database()
    machine_line = machine(ctx)
    if ctx.scale == "full" and "shared_buffers 128MB" in machine_line:
        print(
            "   Note: PostgreSQL runs on its default settings (shared_buffers 128MB); the "
            "full-scale figures in BENCHMARKS.md use the README's 'PostgreSQL settings'."
        )
    order = {name: getattr(module, "ORDER", 100) for name, module in benchmarks}
    errors, misses = [], []
    for name, module in selected:
        print(f"\n== {name}")
        began = time.perf_counter()
        try:
            results = module.run(ctx)
        except Exception:
            traceback.print_exc()
            errors.append(name)
            continue
        for result in results:
            result.benchmark = name
            ratio = f"  ({result.ratio:.2f}× {result.baseline_name})" if result.ratio else ""
            verdict = {True: "  pass", False: "  MISS", None: ""}[result.passed]
            print(f"   {result.name}: {_format(result.value, result.unit)}{ratio}{verdict}")
            if result.passed is False:
                misses.append(f"{name}: {result.name}")
        if results:
            section = render_section(name, ctx, results, machine_line)
            write_report({f"{name}:{ctx.scale}": section}, order)
        print(f"   ({time.perf_counter() - began:.1f} s)")
    print(f"\nDone in {time.perf_counter() - started:.1f} s; figures in {REPORT.name}.")
    if errors:
        print(f"Failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    if misses and not ctx.in_ci:
        print(f"Targets missed: {'; '.join(misses)}", file=sys.stderr)
        return 2
    return 0


def run_import_child(code: str, path: Path, *extra: str) -> dict:
    """Run an import script (`python -c code path *extra`) in a child process of its own.

    The child prints one JSON object as its last line, with at least "status" (and "error"
    when refused); its peak memory is then its own. Returns that object plus the file size.
    """
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pharmacrm.settings"}
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    # Without a broker, tasks run in-process: the follow-up status recomputation of each batch's
    # customers would be timed as part of the import. An in-memory broker nobody consumes keeps
    # the import's own figure; the statuses benchmark measures that recomputation separately.
    env.setdefault("CELERY_BROKER_URL", "memory://")
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"import of {path.name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "done":
        raise RuntimeError(f"import of {path.name} was refused: {result.get('error', '')}")
    result["bytes"] = path.stat().st_size
    return result
