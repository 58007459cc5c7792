from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.models import ImportRun
from customers.pos_import import pos_file_import
from customers.selectors import import_run_summary


class Command(BaseCommand):
    help = "Import POS purchase exports (XML). Prints a report per file."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, files: list[Path], batch_size: int, **options):
        refused = 0
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            run = pos_file_import(path=path, batch_size=batch_size)
            self.stdout.write(import_run_summary(run=run))
            refused += run.status == ImportRun.Status.FAILED
        if refused:
            raise CommandError(f"{refused} of {len(files)} file(s) refused")
