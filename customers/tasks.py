"""Celery tasks of the customer base: the POS inbox, reservations past their deadline."""

import logging
import os
import time
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import ImportRun
from .pos_import import pos_file_import
from .reservations import reservations_expire
from .selectors import import_run_summary

logger = logging.getLogger(__name__)

# A file claimed this long ago whose import never finished (its worker died and the task was
# lost) is claimed again.
STALE_CLAIM_SECONDS = 2 * 3600


def _inbox() -> Path:
    inbox = Path(settings.POS_INBOX_DIR)
    for sub in ("processing", "done", "failed"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    return inbox


@shared_task(ignore_result=True)
def pos_inbox_scan() -> int:
    """Claim every XML file dropped into the inbox and queue its import; returns files queued.

    Claiming is an atomic rename into processing/, so two schedulers never take the same file.
    """
    inbox = _inbox()
    queued = 0
    stale_before = time.time() - STALE_CLAIM_SECONDS
    stale = [p for p in (inbox / "processing").glob("*.xml") if p.stat().st_mtime < stale_before]
    for path in sorted(inbox.glob("*.xml")) + stale:
        claimed = inbox / "processing" / path.name
        try:
            if path != claimed:
                os.rename(path, claimed)
            os.utime(claimed)  # the claim time, for the stale check
        except FileNotFoundError:
            continue  # another scheduler claimed it first
        pos_inbox_import_file.delay(claimed.name)
        queued += 1
    return queued


@shared_task(ignore_result=True, acks_late=True)
def pos_inbox_import_file(name: str) -> None:
    """Import one claimed inbox file and move it to done/ or failed/ with its report.

    Safe to run twice: the import is idempotent and a file already moved is skipped.
    """
    inbox = _inbox()
    claimed = inbox / "processing" / Path(name).name
    if not claimed.exists():
        return
    run = pos_file_import(path=claimed)
    folder = inbox / ("failed" if run.status == ImportRun.Status.FAILED else "done")
    target = folder / claimed.name
    if target.exists():
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        target = folder / f"{claimed.stem}.{stamp}{claimed.suffix}"
    target.with_name(target.name + ".report.txt").write_text(
        import_run_summary(run=run) + "\n", encoding="utf-8"
    )
    os.replace(claimed, target)
    logger.info("POS inbox file %s imported (run %s, %s)", target.name, run.pk, run.status)


@shared_task(ignore_result=True, acks_late=True)
def pos_upload_import(path_str: str, user_id: int | None, file_name: str | None = None) -> None:
    """Import a POS file a CRM user uploaded (customers.admin.imports), as that user.

    The run keeps the name the file had on the user's computer. Running twice imports nothing
    twice: the second run finds every purchase unchanged.
    """
    from django.contrib.auth import get_user_model

    path = Path(path_str)
    if not path.exists():
        logger.warning("Uploaded POS file %s is gone: nothing to import", path)
        return
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    run = pos_file_import(path=path, file_name=file_name or path.name, user=user)
    logger.info("Uploaded POS file %s imported (run %s, %s)", path.name, run.pk, run.status)


@shared_task(ignore_result=True)
def reservations_expire_task() -> int:
    """Reservations not picked up by their deadline become expired (every few minutes)."""
    expired = reservations_expire()
    if expired:
        logger.info("%s reservations expired", expired)
    return expired
