"""`manage.py setup_demo` (what `make run` does): the demo base arrives with statuses and
bonuses, consistent with the ledger, and a second run adds nothing."""

import io

import pytest
from django.core.management import call_command

from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement, CustomerFigures

pytestmark = pytest.mark.django_db


def test_the_demo_has_statuses_and_bonuses_and_a_second_run_adds_nothing():
    out = io.StringIO()
    call_command("setup_demo", customers=60, force=True, stdout=out)
    assert CustomerFigures.objects.exclude(status="").exists()
    assert BonusAccount.objects.filter(balance__gt=0).count() > 20
    assert BonusMovement.objects.filter(kind="redemption").exists()
    assert ledger_differences() == []
    movements = BonusMovement.objects.count()
    call_command("setup_demo", customers=60, force=True, stdout=out)
    assert BonusMovement.objects.count() == movements
    assert "Bonuses posted for 0 purchases" in out.getvalue()
