"""Foreign keys checked set-based (pharmacrm.references): the per-row checks really are skipped,
and the batch lock gives the guarantee they gave, against real concurrent deletes."""

import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, connections, transaction

from customers.models import Product, PurchaseLine
from customers.pos_import import pos_file_import
from customers.tests.factories import ProductFactory, PurchaseFactory
from customers.tests.pos_xml_builders import write_pos_file
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusMovement
from pharmacrm import references
from pharmacrm.references import lock_referenced, row_checks_can_be_skipped, row_checks_off

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's triggers"),
]
LINES = PurchaseLine._meta.db_table
PRODUCTS = Product._meta.db_table


@pytest.fixture(autouse=True)
def _fresh_permission():
    """Whether the role may skip is remembered per connection: forgotten around each test, as
    a test may change the role."""
    references._permitted.clear()
    yield
    references._permitted.clear()


def insert_line(purchase_id: int, product_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LINES} (purchase_id, product_id, qty, price, amount) "
            "VALUES (%s, %s, 1, 10, 10)",
            [purchase_id, product_id],
        )


def check_constraints_now() -> None:
    """The deferred foreign-key checks queued so far, run now rather than at commit."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_inside_row_checks_off_the_per_row_check_is_skipped():
    purchase = PurchaseFactory()
    missing = (Product.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    # Outside: the line naming no product fails its check.
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_line(purchase.pk, missing)
        check_constraints_now()
    # Inside: no check was queued (that is why the caller must lock what it refers to).
    with transaction.atomic():
        with row_checks_off() as off:
            insert_line(purchase.pk, missing)
        assert off is True
        check_constraints_now()
        transaction.set_rollback(True)
    # And after it, checks are queued again.
    with pytest.raises(IntegrityError), transaction.atomic():
        with row_checks_off():
            pass
        insert_line(purchase.pk, missing)
        check_constraints_now()


def test_an_error_inside_leaves_the_checks_on_for_the_rest_of_the_transaction():
    purchase = PurchaseFactory()
    missing = (Product.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    with pytest.raises(IntegrityError), transaction.atomic():
        with pytest.raises(ZeroDivisionError), row_checks_off():
            1 / 0  # noqa: B018 - a Python error: the transaction itself goes on
        insert_line(purchase.pk, missing)
        check_constraints_now()


@pytest.mark.django_db(transaction=True)
def test_row_checks_off_needs_a_transaction():
    with pytest.raises(RuntimeError), row_checks_off():
        pass


def test_lock_referenced_names_the_rows_that_do_not_exist():
    product = ProductFactory()
    missing = rf"{PRODUCTS}: no row with id {product.pk + 7}"
    with pytest.raises(IntegrityError, match=missing), transaction.atomic():
        lock_referenced(PRODUCTS, [product.pk, product.pk + 7, None])
    with transaction.atomic():
        lock_referenced(PRODUCTS, [product.pk])  # present: locked, nothing raised
        lock_referenced(PRODUCTS, [])


def test_only_a_superuser_or_a_role_granted_the_setting_may_skip():
    role = f"pharmacrm_test_{uuid.uuid4().hex[:12]}"
    with transaction.atomic(), connection.cursor() as cursor:
        # Roles and grants are transactional: all gone with the rollback.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        assert row_checks_can_be_skipped() is False
        with row_checks_off() as off:
            assert off is False  # a no-op: the per-row checks run
        cursor.execute("RESET ROLE")
        cursor.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        references._permitted.clear()
        assert row_checks_can_be_skipped() is True
        transaction.set_rollback(True)


def test_a_pos_import_by_a_role_that_may_not_skip_checks_row_by_row_and_agrees(tmp_path: Path):
    """The slower path, where the database role lacks the grant: the same result."""
    role = f"pharmacrm_test_{uuid.uuid4().hex[:12]}"
    path = tmp_path / "export.xml"
    item = {"sku": "4601234567890", "name": "Нурофен", "qty": "1", "price": "1000.00"}
    write_pos_file(
        path,
        "A-017",
        [
            {
                "id": str(i),
                "datetime": f"2026-11-20T{10 + i % 9:02d}:00:00+03:00",
                "customer": {"card": f"29000000{i:05d}"},
                "lines": [item],
            }
            for i in range(120)
        ],
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
    assert row_checks_can_be_skipped() is False
    run = pos_file_import(path=path)
    assert (run.created, run.rejected, run.customers_created) == (120, 0, 120)
    assert PurchaseLine.objects.filter(purchase__external_id__in=[str(i) for i in range(120)])
    assert BonusMovement.objects.filter(kind="accrual").count() == 120
    assert ledger_differences() == []


@pytest.mark.django_db(transaction=True)
def test_a_referenced_row_deleted_concurrently_waits_for_the_writer_then_is_refused():
    """The guarantee the per-row check gave: a product a batch refers to cannot be deleted under
    it. The delete waits for the batch's key-share lock, then sees its committed lines."""
    purchase = PurchaseFactory()
    product = ProductFactory()
    outcome: dict[str, object] = {}

    def delete_product() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(f"DELETE FROM {PRODUCTS} WHERE id = %s", [product.pk])
            outcome["deleted"] = True
        except IntegrityError as error:
            outcome["error"] = error
        finally:
            connections.close_all()

    with transaction.atomic():
        lock_referenced(PRODUCTS, [product.pk])
        with row_checks_off():
            insert_line(purchase.pk, product.pk)
        deleter = threading.Thread(target=delete_product)
        deleter.start()
        _wait_for_lock_wait(outcome)
    deleter.join(30)
    assert "deleted" not in outcome
    assert "violates foreign key constraint" in str(outcome["error"])
    assert Product.objects.filter(pk=product.pk).exists()
    assert PurchaseLine.objects.filter(purchase=purchase, product=product).count() == 1


def _wait_for_lock_wait(outcome) -> None:
    """Until another backend waits for a row lock (ours)."""
    with connection.cursor() as cursor:
        for _ in range(300):
            # Activity is read once per transaction unless the snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"the concurrent delete never waited for the lock: {outcome}")
