import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from customers import pos_import
from customers.models import (
    Customer,
    ImportIssue,
    ImportRun,
    Product,
    Purchase,
    PurchaseLine,
    PurchaseType,
    Store,
)
from customers.pos_import import pos_file_import
from customers.tests.pos_xml_builders import write_pos_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=[2, 0], ids=["child-processes", "thread"])
def parse_processes(request, monkeypatch):
    """Every import here runs both ways: parsed by forked child processes, and by a thread."""
    monkeypatch.setattr(pos_import, "PARSE_PROCESSES", request.param)
    monkeypatch.setattr(pos_import, "CHUNK", 2)  # frames end inside files and inside batches
    return request.param


ROOT = Path(__file__).resolve().parents[2]
NUROFEN = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "289.00"}
MASK = {"sku": "4607001234561", "name": "Маска медицинская №10", "qty": "2", "price": "55.50"}


def purchase(pid, *, customer=None, lines=(NUROFEN,), when="2026-11-20T14:03:11+03:00", **extra):
    return {"id": pid, "datetime": when, "customer": customer, "lines": list(lines), **extra}


def anna(**extra):
    return {"card": "2900000012345", "phone": "+7 (912) 345-67-89", **extra}


def test_good_purchases_are_imported_and_each_bad_one_is_reported_and_creates_nothing(pos_file):
    path = pos_file(
        [
            purchase(
                "1",
                customer=anna(email="anna@example.ru", last_name="Иванова"),
                lines=[NUROFEN, MASK],
                discount="20.00",
            ),
            purchase("2", customer={"phone": "8 912 000-00-02"}, total="1.00"),
            purchase("3", customer={"phone": "8 912 000-00-03"}, type="barter"),
            purchase("4", customer={"phone": "12345"}),
            purchase("5"),
        ]
    )
    run = pos_file_import(path=path)

    assert run.status == ImportRun.Status.DONE
    assert (run.created, run.updated, run.unchanged, run.rejected) == (2, 0, 0, 3)
    assert (run.customers_created, run.customers_matched) == (1, 0)
    rejected = {i.record_id: i.field for i in ImportIssue.objects.filter(level="error")}
    assert rejected == {"2": "total", "3": "type", "4": "customer.phone"}
    assert Customer.objects.count() == 1  # nobody from the rejected purchases
    first = Purchase.objects.get(external_id="1")
    assert first.customer.phone == "+79123456789"
    assert first.customer.last_name == "Иванова"
    assert first.customer.field_sources["last_name"][0] == "pos"
    assert (first.total, first.discount, first.bonus_spent) == (
        Decimal("380.00"),
        Decimal("20.00"),
        Decimal("0.00"),
    )
    assert first.purchase_date == dt.date(2026, 11, 20)
    assert sorted(first.lines.values_list("amount", flat=True)) == [
        Decimal("111.00"),
        Decimal("289.00"),
    ]
    anonymous = Purchase.objects.get(external_id="5")
    assert anonymous.customer is None


def test_products_first_seen_on_a_till_line_are_created_for_completion(pos_file):
    pos_file_import(path=pos_file([purchase("1", lines=[NUROFEN, MASK])]))
    product = Product.objects.get(sku=MASK["sku"])
    assert product.name == MASK["name"]
    assert product.needs_review is True


def test_reimporting_the_same_file_or_a_renamed_copy_changes_nothing(pos_file, tmp_path):
    path = pos_file([purchase(str(i), customer=anna()) for i in range(1, 6)])
    first = pos_file_import(path=path)
    before = list(Purchase.objects.values_list("pk", "updated_at").order_by("pk"))
    copy = tmp_path / "renamed.xml"
    shutil.copy(path, copy)
    for again in (pos_file_import(path=path), pos_file_import(path=copy)):
        assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
        assert again.customers_created == again.customers_matched == 0
        assert again.checksum == first.checksum
    assert list(Purchase.objects.values_list("pk", "updated_at").order_by("pk")) == before
    assert PurchaseLine.objects.count() == 5


def test_a_reexported_purchase_updates_the_stored_one(pos_file, tmp_path):
    pos_file_import(path=pos_file([purchase("1", customer=anna(), lines=[NUROFEN, MASK])]))
    returned = pos_file(
        [purchase("1", customer=anna(), lines=[MASK], status="returned")], name="later.xml"
    )
    run = pos_file_import(path=returned)
    assert (run.created, run.updated, run.unchanged) == (0, 1, 0)
    stored = Purchase.objects.get()
    assert stored.status == "returned"
    assert stored.total == Decimal("111.00")
    assert list(stored.lines.values_list("product__sku", flat=True)) == [MASK["sku"]]


def test_the_same_purchase_twice_in_one_file_is_one_purchase(pos_file):
    run = pos_file_import(
        path=pos_file([purchase("1"), purchase("1", status="cancelled"), purchase("2")])
    )
    assert Purchase.objects.count() == 2
    assert Purchase.objects.get(external_id="1").status == "cancelled"
    assert (run.created, run.updated) == (2, 1)


def test_a_file_broken_at_its_end_is_refused_whole_with_nothing_stored(pos_file, tmp_path):
    good = pos_file([purchase(str(i), customer=anna()) for i in range(1, 50)])
    broken = tmp_path / "broken.xml"
    broken.write_bytes(good.read_bytes()[:-40])
    run = pos_file_import(path=broken)
    assert run.status == ImportRun.Status.FAILED
    assert run.error
    assert Purchase.objects.count() == 0
    assert Customer.objects.count() == 0
    assert not Store.objects.filter(code="A-017").exists()


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b'<export store="A" generated="2026-11-20T23:00:00+03:00" version="1">&lol2;</export>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<export store="A" generated="2026-11-20T23:00:00+03:00" version="1">&xxe;</export>',
    ],
    ids=["billion-laughs", "external-entity"],
)
def test_hostile_xml_is_refused_whole(tmp_path, payload):
    path = tmp_path / "hostile.xml"
    path.write_bytes(payload)
    run = pos_file_import(path=path)
    assert run.status == ImportRun.Status.FAILED
    assert Purchase.objects.count() == 0


def test_an_unknown_store_is_created_and_reported(pos_file):
    run = pos_file_import(path=pos_file([purchase("1")], store="NEW-1"))
    assert Store.objects.get(code="NEW-1").name == "NEW-1"
    warning = run.issues.get(level="warning")
    assert warning.field == "store"
    assert run.warnings == 1


def test_an_unknown_order_reference_imports_an_ordinary_purchase_with_a_warning(pos_file):
    run = pos_file_import(path=pos_file([purchase("1", order_ref="APP-77")]))
    stored = Purchase.objects.get()
    assert stored.order_ref == "APP-77"
    assert run.created == 1
    assert run.issues.get(level="warning", field="order_ref").record_id == "1"


def test_one_person_through_three_stores_is_one_customer_with_all_purchases(pos_file):
    pos_file_import(path=pos_file([purchase("1", customer={"card": "2900000012345"})], "S-1"))
    pos_file_import(path=pos_file([purchase("1", customer={"phone": "8 912 345-67-89"})], "S-2"))
    run = pos_file_import(
        path=pos_file(
            [purchase("1", customer={"phone": "+7 (912) 345 67 89", "card": "2900000012345"})],
            "S-3",
        )
    )
    assert run.customers_merged == 1
    customer = Customer.objects.get()
    assert (customer.phone, customer.card_number) == ("+79123456789", "2900000012345")
    assert customer.purchases.count() == 3


def test_two_people_sharing_a_phone_stay_apart_with_a_suspicion(pos_file):
    pos_file_import(
        path=pos_file(
            [
                purchase(
                    "1",
                    customer={
                        "card": "2900000000011",
                        "phone": "89123456789",
                        "first_name": "Анна",
                    },
                ),
                purchase("2", customer={"card": "2900000000028", "first_name": "Пётр"}),
                purchase(
                    "3",
                    customer={
                        "card": "2900000000028",
                        "phone": "89123456789",
                        "first_name": "Пётр",
                    },
                ),
            ]
        )
    )
    assert Customer.objects.count() == 2
    assert Purchase.objects.get(external_id="3").customer.card_number == "2900000000028"
    assert ImportRun.objects.get().suspicions == 1


def test_the_command_prints_the_report_and_fails_for_a_refused_file(pos_file, tmp_path, capsys):
    good = pos_file([purchase("1"), purchase("2", total="0.01")])
    bad = tmp_path / "bad.xml"
    bad.write_text("<export>")
    with pytest.raises(CommandError, match="1 of 2 file"):
        call_command("import_pos_xml", str(good), str(bad))
    out = capsys.readouterr().out
    assert "1 created" in out
    assert "[total]" in out
    assert "bad.xml" in out


def test_the_inbox_task_imports_dropped_files_and_files_them_with_reports(
    settings, tmp_path, celery_eager
):
    from customers.tasks import pos_inbox_scan

    settings.POS_INBOX_DIR = tmp_path / "inbox"
    settings.POS_INBOX_DIR.mkdir()
    write_pos_file(settings.POS_INBOX_DIR / "a.xml", "A-1", [purchase("1")])
    (settings.POS_INBOX_DIR / "b.xml").write_text("not xml")

    assert pos_inbox_scan() == 2  # eager: imported right away

    done = settings.POS_INBOX_DIR / "done"
    failed = settings.POS_INBOX_DIR / "failed"
    assert (done / "a.xml").exists()
    assert "1 created" in (done / "a.xml.report.txt").read_text()
    assert (failed / "b.xml").exists()
    assert (failed / "b.xml.report.txt").exists()
    assert not list(settings.POS_INBOX_DIR.glob("*.xml"))
    assert pos_inbox_scan() == 0


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_two_processes_importing_overlapping_files_at_once_leave_one_row_per_purchase(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency is tested on PostgreSQL")
    # Earlier transactional tests flush the tables, the migrations' purchase types included.
    PurchaseType.objects.get_or_create(code="retail", defaults={"name": "Розничная продажа"})
    customers = [{"phone": f"8 912 100-{i // 100:02d}-{i % 100:02d}"} for i in range(400)]
    files = []
    for name, ids in (("a.xml", range(0, 3000)), ("b.xml", range(1500, 4500))):
        path = tmp_path / name
        write_pos_file(path, "A-017", (purchase(str(i), customer=customers[i % 400]) for i in ids))
        files.append(path)
    env = {**os.environ, "DATABASE_URL": _database_url(), "SECRET_KEY": "test"}
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "import_pos_xml", str(path), "--batch-size", "500"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for path in files
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert Purchase.objects.count() == 4500
    assert Purchase.objects.values("external_id").distinct().count() == 4500
    assert Customer.objects.count() == 400
    assert PurchaseLine.objects.count() == 4500


def test_a_real_worker_picks_up_inbox_files_queued_by_the_scan(settings, tmp_path, celery_worker):
    from customers.tasks import pos_inbox_scan

    PurchaseType.objects.get_or_create(code="retail", defaults={"name": "Розничная продажа"})
    settings.POS_INBOX_DIR = tmp_path / "inbox"
    settings.POS_INBOX_DIR.mkdir()
    for name in ("a.xml", "b.xml"):
        write_pos_file(settings.POS_INBOX_DIR / name, name[0].upper(), [purchase("1")])

    assert pos_inbox_scan() == 2  # claims both files and queues one task per file

    done = settings.POS_INBOX_DIR / "done"
    deadline = time.monotonic() + 60
    while len(list(done.glob("*.xml"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(p.name for p in done.glob("*.xml")) == ["a.xml", "b.xml"]
    assert Purchase.objects.count() == 2
    assert not list((settings.POS_INBOX_DIR / "processing").iterdir())


def test_a_merge_late_in_a_batch_moves_the_earlier_purchases_of_the_merged_customer(pos_file):
    pos_file_import(path=pos_file([purchase("1", customer={"card": "2900000012345"})], "S-1"))
    run = pos_file_import(
        path=pos_file(
            [
                purchase("1", customer={"phone": "8 912 345-67-89"}),  # a new customer B
                purchase("2", customer={"phone": "8 912 345-67-89"}),
                # names the card's customer A and B together: B is merged into A
                purchase("3", customer={"phone": "8 912 345-67-89", "card": "2900000012345"}),
            ],
            "S-2",
            name="second.xml",
        )
    )
    assert run.status == ImportRun.Status.DONE
    assert run.customers_merged == 1
    customer = Customer.objects.get()
    assert customer.purchases.count() == 4


def test_batches_split_where_a_purchase_id_repeats_across_the_parsers_shares(pos_file):
    ids = ["1", "2", "3", "2", "4", "5", "1", "6", "7"]
    run = pos_file_import(
        path=pos_file(
            [
                purchase(pid, status="cancelled" if n >= 3 else "completed")
                for n, pid in enumerate(ids)
            ]
        ),
        batch_size=4,
    )
    assert (run.created, run.updated, run.unchanged, run.rejected) == (7, 2, 0, 0)
    assert set(
        Purchase.objects.filter(status="cancelled").values_list("external_id", flat=True)
    ) == {"1", "2", "4", "5", "6", "7"}


def test_a_file_the_parsers_find_broken_raises_and_leaves_no_child_behind(tmp_path, monkeypatch):
    path = tmp_path / "broken.xml"
    write_pos_file(path, "A-017", [purchase(str(i)) for i in range(1, 30)])
    path.write_bytes(path.read_bytes()[:-40])
    batches = pos_import._parsed_batches(path, 5)
    with pytest.raises(pos_import.PosFileError, match="not well-formed"):
        for _batch in batches:
            pass
    batches.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_children_stopped_before_their_output_is_read_are_reaped(pos_file):
    batches = pos_import._parsed_batches(pos_file([purchase(str(i)) for i in range(1, 50)]), 5)
    batches.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)
