"""`manage.py import_customers FILE --source app|site|pos|contact_centre [--mapping FILE]`."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from customers.customer_import import customers_import
from customers.models import ImportRun
from customers.selectors import import_run_summary

SOURCES = ("app", "site", "pos", "contact_centre")


class Command(BaseCommand):
    help = (
        "Import a customer-base export (.csv or .xlsx) of the app, the website, the POS or the "
        "contact centre. Bad rows are reported and skipped; exits with an error only when the "
        "file is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="customer export, .csv or .xlsx")
        parser.add_argument("--source", required=True, choices=SOURCES, help="who exported it")
        parser.add_argument(
            "--mapping",
            type=Path,
            help='JSON object {"file column title": "field name" or null}, over the defaults',
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, file: Path, source: str, mapping: Path | None, batch_size, **options):
        if not file.is_file():
            raise CommandError(_("No such file: %(path)s") % {"path": file})
        columns = None
        if mapping is not None:
            try:
                columns = json.loads(mapping.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError) as exc:
                raise CommandError(
                    _("Cannot read the mapping %(path)s: %(error)s")
                    % {"path": mapping, "error": exc}
                ) from None
        run = customers_import(file=file, source=source, mapping=columns, batch_size=batch_size)
        self.stdout.write(import_run_summary(run=run))
        if run.status == ImportRun.Status.FAILED:
            raise CommandError(_("%(file)s refused.") % {"file": run.file_name})
