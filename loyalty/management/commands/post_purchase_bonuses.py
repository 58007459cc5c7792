"""`manage.py post_purchase_bonuses`: bonuses for purchases stored before the ledger knew them."""

import time

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from loyalty.ledger_backfill import post_purchase_bonuses


class Command(BaseCommand):
    help = (
        "Post the bonuses of the purchases of customers who have no bonus account yet (data "
        "loaded before the ledger, such as the demo data or a migration from the old system): "
        "accruals at the status of each purchase's date and spends checked against the balance, "
        "in datetime order. A purchase whose spend the balance does not cover is left without "
        "bonuses and counted. Safe to run again."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        result = post_purchase_bonuses()
        self.stdout.write(
            _(
                "Bonuses posted for %(purchases)s purchases of %(customers)s customers: "
                "%(movements)s movements; %(refused)s spends not covered by the balance, left "
                "without bonuses (%(seconds).1f s)."
            )
            % {
                "purchases": result.purchases,
                "customers": result.customers,
                "movements": result.movements,
                "refused": result.refused,
                "seconds": time.monotonic() - started,
            }
        )
