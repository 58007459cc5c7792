"""Load demo data: stores, products, customers with families and consents, two years of purchases.

Refuses when the base already holds customers, unless --append is given (then N more customers are
added with fresh ids and identifiers). On PostgreSQL the rows are streamed with COPY from worker
processes; the logic lives in customers.demo.
"""

import datetime as dt
import resource

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from customers.demo.parallel import LoadError
from customers.demo.service import DEFAULT_SEED, SeedRefused, demo_seed


def _as_of(value: str) -> dt.datetime | dt.date:
    parsed = parse_datetime(value) or parse_date(value)
    if parsed is None:
        raise ValueError(value)
    return parsed


class Command(BaseCommand):
    help = (
        "Load demo data (stores, products, customers, two years of purchases). Refuses when "
        "customers exist unless --append. PostgreSQL: bulk COPY; 1,000,000 customers take minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000, help="customers to create")
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same data)"
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="add to a base that already holds customers (fresh ids and identifiers)",
        )
        parser.add_argument(
            "--workers", type=int, default=None, help="generator processes (PostgreSQL only)"
        )
        parser.add_argument(
            "--as-of",
            type=_as_of,
            default=None,
            help="end the history at this date (end of day) or ISO time instead of now",
        )

    def handle(self, *args, customers, seed, append, workers, as_of, **options):
        verbose = options["verbosity"] > 0
        say = self.stdout.write if verbose else (lambda _: None)
        try:
            result = demo_seed(
                customers=customers,
                seed=seed,
                append=append,
                workers=workers,
                as_of=as_of,
                out=say,
            )
        except (SeedRefused, LoadError) as exc:
            raise CommandError(str(exc)) from None
        if not verbose:
            return
        total = sum(result.rows.values())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {result.elapsed:.1f} s:"))
        for table, n in result.rows.items():
            self.stdout.write(f"  {table:<24} {n:>12,}")
        self.stdout.write(
            f"  {'total':<24} {total:>12,} rows, {total / max(result.elapsed, 1e-9):,.0f} rows/s"
        )
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
        self.stdout.write(f"  phases: {phases}")
        behaviours = ", ".join(f"{k} {v:,}" for k, v in sorted(result.behaviours.items()))
        self.stdout.write(f"  customers by behaviour: {behaviours}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        workers_peak = ", ".join(f"{kb / 1024:.0f}" for kb in result.worker_peak_rss_kb)
        self.stdout.write(
            f"  peak memory: this process {peak / 1024:.0f} MB"
            + (f"; workers {workers_peak} MB" if workers_peak else "")
        )
