"""seed_demo: realistic, exact, deterministic demo data; refusal without --append; the PostgreSQL
COPY path puts every index, constraint and sequence back."""

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO
from pathlib import Path

import phonenumbers
import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from customers.demo import catalogue as cat
from customers.demo import generator as gen
from customers.demo import parallel, pgload, service
from customers.demo.service import SeedRefused, demo_seed
from customers.models import (
    Consent,
    Customer,
    ExternalId,
    FamilyMember,
    Product,
    Purchase,
    PurchaseLine,
    Reservation,
    Store,
)
from customers.normalize import normalize_phone

AS_OF = dt.datetime(2026, 11, 15, 18, 30, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 15)  # AS_OF in Europe/Moscow
CUSTOMER_TABLES = [
    m._meta.db_table
    for m in (Customer, FamilyMember, ExternalId, Consent, Purchase, PurchaseLine, Reservation)
]
# The PostgreSQL path loads through other connections: they must see committed data. The
# sequences restart too: each block's random draws are seeded with its first customer id, which
# would otherwise depend on how many ids earlier tests (some of them concurrent) used up.
transactional = pytest.mark.django_db(transaction=True, reset_sequences=True)


def _schema() -> set[tuple]:
    with connection.cursor() as cursor:
        return pgload.schema_snapshot(cursor.cursor, CUSTOMER_TABLES)


def _months_before(day: dt.date, n: int) -> set[tuple[int, int]]:
    first = day.replace(day=1)
    return {((first - relativedelta(months=k)).year, (first - relativedelta(months=k)).month)
            for k in range(1, n + 1)}  # fmt: skip


@transactional
def test_demo_seed_builds_a_consistent_realistic_base():
    schema_before = _schema() if connection.vendor == "postgresql" else None

    result = demo_seed(customers=200, seed=7, as_of=AS_OF, workers=2)

    # Counts by table, in the ranges the brief sets (10 purchases, 2.5 lines each on average).
    assert Customer.objects.count() == 200
    purchases, lines = Purchase.objects.count(), PurchaseLine.objects.count()
    assert 1_500 <= purchases <= 2_500
    assert 2.2 <= lines / purchases <= 2.8
    assert 50 <= FamilyMember.objects.count() <= 160
    assert 300 <= Consent.objects.count() <= 600
    assert 100 <= ExternalId.objects.count() <= 250
    assert Reservation.objects.count() >= 1
    assert result.rows[Purchase._meta.db_table] == purchases
    assert 5 <= Store.objects.count() <= 30
    products = Product.objects.count()
    assert products >= 250
    assert 0.15 <= Product.objects.filter(prescription_only=True).count() / products <= 0.22

    # Identifiers: valid E.164 Russian mobiles, 13-digit cards, unique everywhere.
    phones = list(Customer.objects.exclude(phone=None).values_list("phone", flat=True))
    assert len(phones) >= 180
    assert len(set(phones)) == len(phones)
    for phone in phones:
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
    cards = list(Customer.objects.exclude(card_number=None).values_list("card_number", flat=True))
    assert len(cards) >= 150
    assert len(set(cards)) == len(cards)
    assert all(len(card) == 13 and card.isdigit() for card in cards)
    emails = [
        e.lower() for e in Customer.objects.exclude(email=None).values_list("email", flat=True)
    ]
    assert 80 <= len(emails) == len(set(emails))

    # Names agree in gender: surname, first name and patronymic.
    female_surnames = {cat.female_surname(s) for s in cat.SURNAMES}
    for c in Customer.objects.all():
        if c.sex == "F":
            assert c.first_name in cat.FEMALE_FIRST
            assert c.last_name in female_surnames
            assert c.middle_name.endswith(("вна", "чна"))
        else:
            assert c.first_name in cat.MALE_FIRST
            assert c.last_name in cat.SURNAMES
            assert c.middle_name.endswith(("вич", "ич"))

    # Money is exact: amount = qty × price half-up, total = Σ amounts − discount, bonus ≤ total.
    sums: dict[int, Decimal] = defaultdict(Decimal)
    fractional = 0
    for purchase_id, qty, price, amount in PurchaseLine.objects.values_list(
        "purchase_id", "qty", "price", "amount"
    ):
        assert amount == (qty * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        fractional += qty != qty.to_integral_value()
        sums[purchase_id] += amount
    assert fractional > 0  # half packs happen, so half-up rounding is exercised
    for p in Purchase.objects.all():
        assert p.total == sums[p.id] - p.discount
        assert p.discount >= 0
        assert 0 <= p.bonus_spent <= p.total
        assert p.purchase_date == timezone.localdate(p.purchased_at)
        assert p.purchased_at <= AS_OF
        assert p.store_id is not None
    statuses = set(Purchase.objects.values_list("status", flat=True))
    assert statuses == {"completed", "cancelled", "returned"}
    assert Purchase.objects.filter(status="completed").count() / purchases > 0.95

    # Every behaviour is there, read from the completed purchases as the status rules read them.
    days: dict[int, list[dt.date]] = defaultdict(list)
    for customer_id, day in Purchase.objects.filter(status="completed").values_list(
        "customer_id", "purchase_date"
    ):
        days[customer_id].append(day)
    months = {cid: {(d.year, d.month) for d in ds} for cid, ds in days.items()}
    last_12, last_3 = _months_before(TODAY, 12), _months_before(TODAY, 3)
    vip = [c for c, m in months.items() if last_12 <= m]
    growing = [c for c, m in months.items() if last_3 <= m and not last_12 <= m]
    one_time = [
        c
        for c, ds in days.items()
        if min(ds) >= TODAY - relativedelta(months=6) and max(ds) <= TODAY - relativedelta(months=3)
    ]
    newcomers = [c for c, ds in days.items() if min(ds) >= TODAY - relativedelta(months=1)]
    lapsed = [c for c, ds in days.items() if max(ds) < TODAY - relativedelta(months=12)]
    regular = [
        c
        for c, ds in days.items()
        if len(ds) >= 4
        and min(ds) < TODAY - relativedelta(months=9)
        and max(ds) >= TODAY - relativedelta(months=4)
        and not last_3 <= months[c]
    ]
    assert min(map(len, (vip, growing, one_time, newcomers, lapsed, regular))) >= 3
    assert Customer.objects.filter(purchases=None).exists()  # registered, never bought
    first = min(min(ds) for ds in days.values())
    assert TODAY - relativedelta(years=2) < first <= TODAY - relativedelta(months=23)

    if connection.vendor == "postgresql":
        # The COPY path dropped and rebuilt indexes and constraints: all back, identical.
        assert result.indexes_rebuilt
        assert _schema() == schema_before
        # Sequences continue after the loaded ids.
        loaded_customers = list(Customer.objects.values_list("id", flat=True))
        loaded_lines = list(PurchaseLine.objects.values_list("id", flat=True))
        customer = Customer.objects.create(last_name="Новая")
        assert customer.id == max(loaded_customers) + 1
        assert max(loaded_customers) - min(loaded_customers) == 199  # dense keys
        line = PurchaseLine.objects.create(
            purchase=Purchase.objects.first(),
            product=Product.objects.first(),
            qty=Decimal("1"),
            price=Decimal("10.00"),
            amount=Decimal("10.00"),
        )
        assert line.id == max(loaded_lines) + 1


@transactional
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_a_failed_load_commits_nothing_and_puts_every_index_back(monkeypatch):
    schema_before = _schema()
    real_targets = service._copy_targets

    def purchase_id_and_qty_swapped():
        targets = real_targets()
        table, columns = targets["line"]
        swapped = dict(zip(columns, columns, strict=True)) | {
            "purchase_id": "qty",
            "qty": "purchase_id",
        }
        targets["line"] = (table, tuple(swapped[c] for c in columns))
        return targets

    monkeypatch.setattr(service, "_copy_targets", purchase_id_and_qty_swapped)
    with pytest.raises(parallel.LoadError, match="customers_purchaseline"):
        demo_seed(customers=150, as_of=AS_OF)

    assert not Customer.objects.exists()  # every worker's COPY was rolled back
    assert not Purchase.objects.exists()
    assert not Consent.objects.exists()
    assert _schema() == schema_before


@transactional
def test_a_second_seed_is_refused_without_append_and_append_adds_fresh_customers():
    call_command("seed_demo", customers=60, as_of=AS_OF, stdout=StringIO())
    counts = _counts()
    first_batch = set(Customer.objects.values_list("id", flat=True))

    with pytest.raises(CommandError, match="already holds 60 customers"):
        call_command("seed_demo", customers=60, as_of=AS_OF, stdout=StringIO())
    assert _counts() == counts

    out = StringIO()
    call_command("seed_demo", customers=40, append=True, as_of=AS_OF, stdout=out)
    assert "Demo data loaded" in out.getvalue()
    assert Customer.objects.count() == 100
    assert Customer.objects.filter(id__gt=max(first_batch)).count() == 40
    assert _counts()["purchase"] > counts["purchase"]
    for field in ("phone", "card_number"):
        values = list(Customer.objects.exclude(**{field: None}).values_list(field, flat=True))
        assert len(values) == len(set(values))
    # The second batch is not a copy of the first one (the seed mixes in the customer ids).
    first_names = list(
        Customer.objects.filter(id__in=first_batch).order_by("id").values_list("last_name")[:40]
    )
    second_names = list(
        Customer.objects.exclude(id__in=first_batch).order_by("id").values_list("last_name")
    )
    assert first_names != second_names


def _counts() -> dict[str, int]:
    return {
        "customer": Customer.objects.count(),
        "purchase": Purchase.objects.count(),
        "line": PurchaseLine.objects.count(),
        "consent": Consent.objects.count(),
        "store": Store.objects.count(),
    }


@pytest.mark.django_db
def test_seeding_inside_a_transaction_works_on_the_callers_connection():
    # pytest-django's test transaction: on PostgreSQL the in-transaction COPY path is taken.
    result = demo_seed(customers=30, as_of=AS_OF)
    assert Customer.objects.count() == 30
    assert Purchase.objects.count() == result.rows[Purchase._meta.db_table] > 100
    assert result.indexes_rebuilt == []
    loaded = list(Customer.objects.values_list("id", flat=True))
    customer = Customer.objects.create(last_name="После")
    assert customer.id == max(loaded) + 1


@pytest.mark.django_db
def test_not_enough_disk_space_is_refused_before_anything_is_written(monkeypatch):
    class Usage:
        free = 1_000_000

    monkeypatch.setattr(service.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(SeedRefused, match="Not enough disk space"):
        demo_seed(customers=1000, as_of=AS_OF)
    assert not Store.objects.exists()
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_a_history_ending_in_the_future_is_refused():
    with pytest.raises(SeedRefused, match="future"):
        demo_seed(customers=10, as_of=timezone.now() + dt.timedelta(days=2))
    assert not Customer.objects.exists()


def _spec(customers: int, block_size: int) -> gen.Spec:
    stores = tuple(
        gen.StoreSpec(i + 1, city.name, city.zone) for i, city in enumerate(cat.CITIES[:6])
    )
    products = tuple(
        gen.ProductSpec(i + 1, price=10_000 + 37 * i, weight=1.0, split=i % 3 == 0)
        for i in range(40)
    )
    return gen.Spec(
        seed=3,
        customers=customers,
        first_ids=dict.fromkeys(gen.TABLES, 1),
        today=TODAY,
        now_utc=int(AS_OF.timestamp()),
        chain_zone="Europe/Moscow",
        stores=stores,
        products=products,
        purchase_types={"retail": 1, "preorder": 2, "delivery": 3},
        block_size=block_size,
    )


def test_the_same_seed_gives_the_same_rows_whatever_the_number_of_workers(tmp_path: Path):
    spec = _spec(customers=260, block_size=50)
    single: dict[str, list[str]] = defaultdict(list)
    for _block, chunks in gen.iter_blocks(spec):
        for table, text in chunks.items():
            single[table] += text.splitlines()

    stats = parallel.run(spec, parallel.FileTarget(str(tmp_path)), workers=2)

    parallel_rows: dict[str, list[str]] = defaultdict(list)
    for path in map(Path, stats.files):
        parallel_rows[path.name.split(".")[0]] += path.read_text().splitlines()
    for table in gen.TABLES:
        by_id = sorted(parallel_rows[table], key=lambda row: int(row.split("\t")[0]))
        assert by_id == single[table], table
        ids = [int(row.split("\t")[0]) for row in by_id]
        assert ids == list(range(1, len(ids) + 1))  # dense keys across workers
    assert stats.rows == {t: len(rows) for t, rows in single.items()}
    assert len({p.name for p in map(Path, stats.files)}) == len(stats.files)


def test_every_demo_phone_is_a_valid_mobile_and_its_till_notations_normalise_back():
    for customer_id in [*range(1, 400), 999_999, 1_000_000, 54_321_987]:
        phone = gen.phone_for(customer_id)
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number), phone
        for variant in range(5):
            assert normalize_phone(gen.till_notation(phone, variant)) == phone
    assert len({gen.phone_for(i) for i in range(1, 50_000)}) == 49_999


def test_money_is_rendered_exactly_from_kopecks():
    assert [gen.money(k) for k in (0, 5, 99, 100, 123_456)] == [
        "0.00",
        "0.05",
        "0.99",
        "1.00",
        "1234.56",
    ]
    assert gen.card_for(1) == cat.ean13("270000000001")
    assert len(gen.card_for(123_456_789)) == 13
