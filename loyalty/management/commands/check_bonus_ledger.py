"""`manage.py check_bonus_ledger`: every account against its ledger; non-zero exit on a
difference."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement


class Command(BaseCommand):
    help = (
        "Verify every bonus account against its ledger: each credit's unspent part, each "
        "debit's uncovered part, and each account's available, pending and debt figures. "
        "Exits with status 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=100, help="Differences to print per check (default 100)."
        )

    def handle(self, *args, limit: int, **options):
        started = time.monotonic()
        differences = ledger_differences(limit=max(limit, 1))
        accounts = BonusAccount.objects.count()
        movements = BonusMovement.objects.count()
        for d in differences:
            where = _("customer %(customer)s") % {"customer": d.customer_id}
            if d.movement_id is not None:
                where += ", " + _("movement %(id)s") % {"id": d.movement_id}
            self.stderr.write(f"{where}: {d.problem}")
        summary = _(
            "%(accounts)s accounts, %(movements)s movements checked in %(seconds).1f s."
        ) % {"accounts": accounts, "movements": movements, "seconds": time.monotonic() - started}
        if differences:
            raise CommandError(
                _("%(count)s differences between the accounts and the ledger. ")
                % {"count": len(differences)}
                + summary
            )
        self.stdout.write(_("No differences. ") + summary)
