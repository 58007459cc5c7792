"""`manage.py recompute_statuses [--as-of YYYY-MM-DD] [--full]`."""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils.translation import gettext as _

from loyalty.models import CustomerFigures, CustomerStatus
from loyalty.services import statuses_recompute


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            _("--as-of: “%(value)s” is not a date (YYYY-MM-DD).") % {"value": value}
        ) from None


class Command(BaseCommand):
    help = (
        "Recompute and store every customer's status, figures and R/F/M scores as of a date "
        "(default: today in the chain's time zone). The same date gives the same answer every "
        "time. --full replays every customer's history from the first purchase."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=str, help="YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--full",
            action="store_true",
            help="replay the whole history (after a backfill, late files or new thresholds)",
        )

    def handle(self, *args, as_of: str | None, full: bool, **options):
        day = _date(as_of) if as_of else None
        started = time.monotonic()
        run = statuses_recompute(as_of=day, full=full)
        if run is None:
            raise CommandError(_("Another status recomputation is running; try again later."))
        self.stdout.write(
            _(
                "%(kind)s as of %(date)s: %(customers)s customers, %(figures)s figure rows "
                "written, %(changes)s status changes written, %(superseded)s superseded "
                "(%(seconds).1f s)."
            )
            % {
                "kind": run.get_kind_display(),
                "date": run.as_of.isoformat(),
                "customers": run.customers,
                "figures": run.figures_written,
                "changes": run.changes_written,
                "superseded": run.changes_superseded,
                "seconds": time.monotonic() - started,
            }
        )
        counts = dict(
            CustomerFigures.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        for status in CustomerStatus:
            self.stdout.write(f"  {status.label}: {counts.get(status.value, 0)}")
