"""`manage.py import_products FILE`: load the chain's product catalogue (CSV or XLSX)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from customers.product_import import ProductImportReport, RowMessage, products_import


class Command(BaseCommand):
    help = (
        "Create and update products by SKU from a catalogue file (.csv or .xlsx). "
        "Bad rows are reported and skipped; exits with an error only when the file is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="catalogue file, .csv or .xlsx")

    def handle(self, *args, file: Path, **options):
        try:
            report = products_import(file=file)
        except FileNotFoundError:
            raise CommandError(_("No such file: %(path)s") % {"path": file}) from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self._print(report)

    def _print(self, report: ProductImportReport) -> None:
        summary = _(
            "%(file)s: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
            "%(rejected)d rejected."
        ) % {
            "file": report.file_name,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": len(report.rejected),
        }
        style = self.style.WARNING if report.rejected else self.style.SUCCESS
        self.stdout.write(style(summary))
        if report.unknown_columns:
            self.stdout.write(
                _("Unknown columns, ignored: %(columns)s")
                % {"columns": ", ".join(report.unknown_columns)}
            )
        for title, messages in (
            (_("Rejected rows:"), report.rejected),
            (_("Warnings:"), report.warnings),
        ):
            if messages:
                self.stdout.write(title)
                for message in messages:
                    self.stdout.write(f"  {_row_label(message)}: {message.message}")


def _row_label(message: RowMessage) -> str:
    if message.sku:
        return _("row %(row)d (SKU %(sku)s)") % {"row": message.row, "sku": message.sku}
    return _("row %(row)d") % {"row": message.row}
