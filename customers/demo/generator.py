"""The deterministic demo-data generator: customers, families, consents and two years of purchases.

Pure Python, no Django: worker processes import only this module. The output is PostgreSQL
``COPY`` text (tab-separated, ``\\N`` for NULL, one row per line), the fastest thing to produce in
Python and to load into PostgreSQL; the SQLite path splits the same text into parameter rows.

Contract:

- The same ``Spec`` gives byte-identical output, whatever the number of worker processes.
- Customers are generated in blocks of ``Spec.block_size``. A block is generated in two phases:
  ``plan`` draws every random choice and renders every row *without* its primary key (the key of a
  purchase depends on how many purchases all earlier blocks had); ``render`` prefixes the keys once
  the first key of each table for that block (``bases``) is known. Customer keys do not depend on
  earlier blocks (one per customer), so purchases can name their customer during ``plan``.
- Identifiers that must be unique (phone, card, email, external ids, receipt numbers) are functions
  of the customer id, never random: unique by construction, also across ``--append`` runs.
- Money is integer kopecks throughout; a line's amount is qty × price rounded half-up to kopecks, a
  purchase's total is the sum of its line amounts minus its discount, exactly.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from . import catalogue as cat

# Bumped whenever the same Spec would give different rows: datasets kept by the benchmarks
# (bench/) are reloaded when the version they were made with differs.
GENERATOR_VERSION = "1"

# Logical tables, in dependency order, with the model attribute names the generator writes (the
# first is always the primary key). Columns not listed must have a database default or be
# nullable: ``service`` checks that against the models before loading.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": (
        "id", "phone", "email", "card_number", "last_name", "first_name", "middle_name",
        "birth_date", "sex", "city", "street", "house", "flat", "household_size", "source",
        "created_at", "updated_at",
    ),
    "family": ("id", "customer_id", "name", "relation", "birth_date", "sex"),
    "external_id": ("id", "customer_id", "system", "external_id", "created_at"),
    "consent": (
        "id", "customer_id", "channel", "granted", "source", "occurred_at", "recorded_at",
        "recorded_by_id", "note",
    ),
    "purchase": (
        "id", "source", "store_id", "external_id", "customer_id", "purchased_at", "purchase_date",
        "purchase_type_id", "status", "total", "discount", "bonus_spent", "order_ref",
        "created_at", "updated_at",
    ),
    "line": ("id", "purchase_id", "product_id", "qty", "price", "amount"),
    "reservation": (
        "id", "customer_id", "store_id", "product_id", "quantity", "status", "source",
        "external_id", "pickup_deadline", "created_at", "updated_at",
    ),
}  # fmt: skip
TABLES: tuple[str, ...] = tuple(COLUMNS)

# Behaviours, each recognisable in the purchase history, and their shares of the customers.
VIP, GROWING, ONE_TIME, LAPSED, NEWCOMER, REGULAR, NO_PURCHASES = (
    "vip", "growing", "one_time", "lapsed", "newcomer", "regular", "no_purchases",
)  # fmt: skip
BEHAVIOURS: tuple[tuple[str, float], ...] = (
    (VIP, 0.12),  # a purchase every calendar month for a year or more, up to today
    (GROWING, 0.07),  # monthly for the last 3-5 months
    (ONE_TIME, 0.10),  # one or two purchases 3-6 months ago, nothing since
    (LAPSED, 0.15),  # bought, then nothing for more than 12 months
    (NEWCOMER, 0.05),  # first purchase within the last month
    (REGULAR, 0.48),  # again and again, every 1.5-4 months
    (NO_PURCHASES, 0.03),  # registered (app, site, card) but never bought
)

# Phones: a bijection customer id -> (mobile code, 7 subscriber digits): an affine permutation of
# 0 .. codes * 10**7 - 1 (the multiplier is coprime to that), so ids below 990,000,000 get distinct
# numbers that do not look consecutive.
_PHONE_MULT = 7_919_467
_PHONE_ADD = 123_456_789
_APP_MULT = 0x9E3779B97F4A7C15  # odd: multiplication modulo 2**64 is a bijection
_SITE_MULT = 2_654_435_761  # coprime to 10**10

NULL = "\\N"
_EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
_CENTS = [f"{c:02d}" for c in range(100)]
# Quantities: (COPY text, thousandths). Index 3 (half a pack) only for products sold by the blister.
_QTYS = (("1.000", 1000), ("2.000", 2000), ("3.000", 3000), ("0.500", 500))
_QTY_TABLE = [0] * 80 + [1] * 13 + [2] * 4 + [3] * 3
# Lines per purchase (after an occasional duplicate pick is dropped, about 2.5 on average).
_LINES_TABLE = [1] * 20 + [2] * 30 + [3] * 24 + [4] * 14 + [5] * 7 + [6] * 5
_PRODUCT_TABLE_SIZE = 8192
_OPEN_SECS, _CLOSE_SECS = 8 * 3600, 22 * 3600  # stores are open 08:00-22:00 local time


def money(kopecks: int) -> str:
    """Integer kopecks -> the exact decimal text PostgreSQL and Decimal read: 12345 -> '123.45'."""
    roubles, cents = divmod(kopecks, 100)
    return f"{roubles}.{_CENTS[cents]}"


def phone_for(customer_id: int) -> str:
    """The demo phone of a customer, E.164; distinct ids give distinct valid RU mobile numbers."""
    codes = cat.MOBILE_CODES
    x = (customer_id * _PHONE_MULT + _PHONE_ADD) % (len(codes) * 10_000_000)
    subscriber, code = divmod(x, len(codes))
    return f"+7{codes[code]}{subscriber:07d}"


def card_for(customer_id: int) -> str:
    """The demo loyalty card: an EAN-13 with the in-store prefix 27 and the id in 10 digits."""
    return cat.ean13(f"27{customer_id:010d}")


def app_id_for(customer_id: int) -> str:
    """The customer's id in the mobile app (16 hex digits, unique per customer id)."""
    return f"{(customer_id * _APP_MULT) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def site_id_for(customer_id: int) -> str:
    """The customer's id on the website (S + 10 digits, unique per customer id)."""
    return f"S{(customer_id * _SITE_MULT) % 10_000_000_000:010d}"


def till_notation(phone: str, variant: int) -> str:
    """The phone as typed at a till, in one of the notations the POS files really contain."""
    d = phone[2:]  # ten digits after +7
    forms = (
        f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
        f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        f"8{d}",
        f"7 ({d[:3]}) {d[3:6]}-{d[6:]}",
    )
    return forms[variant % len(forms)]


@dataclass(frozen=True)
class StoreSpec:
    id: int
    city: str
    zone: str


@dataclass(frozen=True)
class ProductSpec:
    id: int
    price: int  # today's shelf price, kopecks
    weight: float
    season: str = ""
    chronic: bool = False
    split: bool = False
    rx: bool = False


@dataclass(frozen=True)
class Spec:
    """Everything the generator needs; picklable, so worker processes receive it as is."""

    seed: int
    customers: int
    first_ids: dict[str, int]  # per table: the first primary key to use
    today: dt.date  # the last day with purchases (the chain's local date)
    now_utc: int  # epoch seconds; nothing happens after it
    chain_zone: str
    stores: tuple[StoreSpec, ...]
    products: tuple[ProductSpec, ...]
    purchase_types: dict[str, int]  # code -> id: retail, preorder, delivery
    timestamp_suffix: str = "+00"  # "+00" for PostgreSQL; "" for SQLite (naive UTC, as Django)
    block_size: int = 1000
    # Identifiers already held by customers outside this load (only with --append): skipped.
    taken_phones: frozenset[str] = frozenset()
    taken_cards: frozenset[str] = frozenset()
    taken_external_ids: frozenset[tuple[str, str]] = frozenset()

    @property
    def n_blocks(self) -> int:
        return -(-self.customers // self.block_size)

    def block_customers(self, block: int) -> range:
        """Ordinals (0-based, within this load) of the customers in a block."""
        start = block * self.block_size
        return range(start, min(start + self.block_size, self.customers))


@dataclass
class Block:
    """One block after ``plan``: rows without primary keys, ready for ``render``."""

    index: int
    customer_rows: list[str]  # complete rows: customer ids are known up front
    rests: dict[str, list[str]]  # other tables: each row without its id and leading tab
    line_purchase: list[int]  # per line: the purchase's position in this block
    line_tail: list[str]  # per line: the row after the purchase id
    behaviours: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per table in this block."""
        out = {"customer": len(self.customer_rows), "line": len(self.line_tail)}
        for table, rows in self.rests.items():
            out[table] = len(rows)
        return out


def _allocate(weights: list[float], size: int) -> list[int]:
    """Indexes repeated in proportion to their weights (largest remainder): a fast sampler."""
    total = sum(weights)
    exact = [w * size / total for w in weights]
    counts = [int(x) for x in exact]
    short = size - sum(counts)
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[:short]:
        counts[i] += 1
    table: list[int] = []
    for i, n in enumerate(counts):
        table.extend([i] * n)
    return table


def _quota(size: int) -> list[str]:
    """Exactly proportional behaviours for ``size`` customers (every behaviour present when
    ``size`` is large enough), in a fixed order the caller shuffles."""
    names = [name for name, _ in BEHAVIOURS]
    counts = [0] * len(names)
    for i in _allocate([share for _, share in BEHAVIOURS], size):
        counts[i] += 1
    out: list[str] = []
    for name, n in zip(names, counts, strict=True):
        out.extend([name] * n)
    return out


def _check_copy_safe() -> None:
    """Vocabulary goes into COPY text unescaped: refuse anything that would need escaping."""
    words: list[str] = [*cat.STREETS, *cat.MALE_FIRST, *cat.FEMALE_FIRST, *cat.SURNAMES]
    words += [c.name for c in cat.CITIES]
    for pair in cat.PATRONYMICS:
        words.extend(pair)
    for bad in ("\t", "\n", "\r", "\\"):
        for word in words:
            if bad in word:
                raise ValueError(f"demo vocabulary entry needs COPY escaping: {word!r}")


_check_copy_safe()


class Generator:
    """Precomputed tables for one ``Spec``; ``plan`` and ``render`` blocks (see the module doc)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        today = spec.today
        self.today_ord = today.toordinal()
        self.start_ord = (today - relativedelta(years=2)).toordinal() + 1
        self.minus_months = [(today - relativedelta(months=k)).toordinal() for k in range(27)]
        first_of_month = today.replace(day=1)
        self.month_start = [
            (first_of_month - relativedelta(months=m)).toordinal() for m in range(26)
        ]
        self.month_end = [self.today_ord] + [self.month_start[m - 1] - 1 for m in range(1, 26)]
        month_days = self.today_ord - self.month_start[0] + 1
        next_month = first_of_month + relativedelta(months=1)
        self.month_elapsed = month_days / (next_month.toordinal() - self.month_start[0])

        # Day tables cover registrations up to ~6 years back and reservation deadlines ahead.
        self.lo_ord = self.today_ord - 8 * 366
        self.hi_ord = self.today_ord + 8
        days = range(self.lo_ord, self.hi_ord + 1)
        self.date_str = [dt.date.fromordinal(d).isoformat() for d in days]
        self.month_of = [dt.date.fromordinal(d).month - 1 for d in days]
        # Epoch-day tables (UTC side), one day of slack either way for zone offsets.
        self.eday0 = self.lo_ord - _EPOCH_ORD - 1
        edays = range(self.lo_ord - 1, self.hi_ord + 2)
        self.utc_day = [dt.date.fromordinal(d).isoformat() + " " for d in edays]
        self.local_date = [dt.date.fromordinal(d).isoformat() for d in edays]
        suffix = spec.timestamp_suffix
        self.tod = [
            f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(86400)
        ]

        # Zones: 0 is the chain's; offsets per local day, taken at noon (stores are open 08-22 and
        # time-zone transitions happen at night, so the noon offset holds for every time we draw).
        zones = [spec.chain_zone]
        for store in spec.stores:
            if store.zone not in zones:
                zones.append(store.zone)
        self.zone_offsets: list[list[int]] = []
        for name in zones:
            tz = ZoneInfo(name)
            offsets = []
            for d in days:
                noon = dt.datetime.combine(dt.date.fromordinal(d), dt.time(12), tzinfo=tz)
                offsets.append(int(noon.utcoffset().total_seconds()))
            self.zone_offsets.append(offsets)
        chain_offsets = set(self.zone_offsets[0])
        # A chain zone without transitions (Europe/Moscow) gives local dates by arithmetic.
        self.chain_fixed_offset = chain_offsets.pop() if len(chain_offsets) == 1 else None
        self.chain_tz = ZoneInfo(spec.chain_zone)

        # Stores, grouped by city for home stores.
        self.store_ids = [str(s.id) for s in spec.stores]
        self.store_zone = [zones.index(s.zone) for s in spec.stores]
        by_city: dict[str, list[int]] = {}
        for i, store in enumerate(spec.stores):
            by_city.setdefault(store.city, []).append(i)
        city_weight = {c.name: c.weight for c in cat.CITIES}
        self.cities = list(by_city)
        self.city_stores = [by_city[c] for c in self.cities]
        self.city_table = _allocate([city_weight.get(c, 0.02) for c in self.cities], 1024)

        # Products: per calendar month a sampling table (seasonal demand); per quarter back from
        # today a price level (prices rise ~2% a quarter) with the line text precomputed.
        products = spec.products
        self.product_tables = []
        for month in range(12):
            weights = [p.weight * cat.SEASONS[p.season][month] for p in products]
            self.product_tables.append(_allocate(weights, _PRODUCT_TABLE_SIZE))
        chronic = [i for i, p in enumerate(products) if p.chronic]
        chronic_table = _allocate([products[i].weight for i in chronic], 1024) if chronic else []
        self.chronic_table = [chronic[i] for i in chronic_table]
        otc = [i for i, p in enumerate(products) if not p.rx]
        self.otc_table = [otc[i] for i in _allocate([products[i].weight for i in otc], 1024)]
        self.product_split = [p.split for p in products]
        self.product_ids = [str(p.id) for p in products]
        self.tails: list[list[list[tuple[str, int]]]] = []
        for quarter in range(10):
            level = []
            for p in products:
                price = p.price if quarter == 0 else round(p.price / 1.02**quarter)
                variants = []
                for qty_text, milli in _QTYS:
                    amount = (milli * price + 500) // 1000  # half-up; all values are positive
                    tail = f"{p.id}\t{qty_text}\t{money(price)}\t{money(amount)}\n"
                    variants.append((tail, amount))
                level.append(variants)
            self.tails.append(level)

        pt = spec.purchase_types
        self.type_retail = str(pt["retail"])
        self.type_preorder = str(pt.get("preorder", pt["retail"]))
        self.type_delivery = str(pt.get("delivery", pt["retail"]))
        self.surnames_f = [cat.female_surname(s) for s in cat.SURNAMES]
        self.tr_surname_m = [cat.translit(s) for s in cat.SURNAMES]
        self.tr_surname_f = [cat.translit(s) for s in self.surnames_f]
        self.tr_male = [cat.translit(s) for s in cat.MALE_FIRST]
        self.tr_female = [cat.translit(s) for s in cat.FEMALE_FIRST]
        self.domains = [
            cat.EMAIL_DOMAINS[i][0] for i in _allocate([w for _, w in cat.EMAIL_DOMAINS], 100)
        ]
        self.reservation_share = max(0.004, min(1.0, 6 / max(1, spec.customers)))

    # --- time helpers ------------------------------------------------------------------------

    def _utc(self, zone: int, day: int, secs: int) -> int:
        """Epoch seconds of local ``secs`` after midnight of ordinal ``day`` in ``zone``."""
        return (day - _EPOCH_ORD) * 86400 + secs - self.zone_offsets[zone][day - self.lo_ord]

    def _ts(self, epoch: int) -> str:
        """COPY text of an instant: UTC, with the backend's suffix."""
        return self.utc_day[epoch // 86400 - self.eday0] + self.tod[epoch % 86400]

    def _chain_date(self, epoch: int) -> str:
        """The chain's local date of an instant."""
        if self.chain_fixed_offset is not None:
            return self.local_date[(epoch + self.chain_fixed_offset) // 86400 - self.eday0]
        return dt.datetime.fromtimestamp(epoch, self.chain_tz).date().isoformat()

    # --- schedules: purchase days (ordinals) per behaviour ------------------------------------

    def _days(self, behaviour: str, r) -> list[int]:
        ms, me, mm = self.month_start, self.month_end, self.minus_months
        today, start = self.today_ord, self.start_ord
        days: list[int] = []
        if behaviour == VIP:
            for m in range(12 + int(r() * 12), -1, -1):
                lo, hi = max(ms[m], start), me[m]
                if m == 0 and r() > self.month_elapsed:
                    continue  # this month's purchase may still be to come
                span = hi - lo + 1
                for _ in range(1 + (r() < 0.6) + (r() < 0.3)):
                    days.append(lo + int(r() * span))
        elif behaviour == GROWING:
            months = 3 + int(r() * 3)
            for m in range(months, 0, -1):
                span = me[m] - ms[m] + 1
                days.append(ms[m] + int(r() * span))
                if r() < 0.25:
                    days.append(ms[m] + int(r() * span))
            if r() < self.month_elapsed * 0.8:
                days.append(ms[0] + int(r() * (today - ms[0] + 1)))
            if r() < 0.35:  # an earlier episode, well before the streak
                m = months + 3 + int(r() * (20 - months))
                days.append(max(start, ms[m] + int(r() * (me[m] - ms[m] + 1))))
        elif behaviour == ONE_TIME:
            lo, hi = mm[6] + 2, mm[3] - 2
            first = lo + int(r() * (hi - lo + 1))
            days.append(first)
            if r() < 0.3:
                days.append(min(hi, first + 1 + int(r() * 20)))
        elif behaviour == LAPSED:
            lo, hi = start + 30, mm[12] - 3
            day = lo + int(r() * (hi - lo + 1))
            days.append(day)
            for _ in range(int(r() * 6)):
                day -= 20 + int(r() * 70)
                if day < start:
                    break
                days.append(day)
        elif behaviour == NEWCOMER:
            lo = mm[1] + 1
            first = lo + int(r() * (today - lo + 1))
            days.append(first)
            if r() < 0.3:
                days.append(first + int(r() * (today - first + 1)))
        elif behaviour == REGULAR:
            hi = mm[15]
            day = start + int(r() * (hi - start + 1))
            while day <= today:
                days.append(day)
                if r() < 0.25:
                    extra = day + 1 + int(r() * 10)
                    if extra <= today:
                        days.append(extra)
                day += 45 + int(r() * 76)  # 1.5 to 4 months
        days.sort()
        return days

    # --- phase 1 -------------------------------------------------------------------------------

    def plan(self, block_index: int) -> Block:
        """Draw every random choice of one block and render its rows without primary keys."""
        spec = self.spec
        ordinals = spec.block_customers(block_index)
        first_cid = spec.first_ids["customer"] + ordinals.start
        rng = random.Random(spec.seed * 1_000_003 + first_cid)  # noqa: S311 - demo data, not secrets
        r = rng.random
        behaviours = _quota(len(ordinals))
        rng.shuffle(behaviours)

        customers: list[str] = []
        family: list[str] = []
        external: list[str] = []
        consents: list[str] = []
        purchases: list[str] = []
        reservations: list[str] = []
        line_purchase: list[int] = []
        line_tail: list[str] = []
        lp_append, lt_append, p_append = line_purchase.append, line_tail.append, purchases.append

        ts, utc, chain_date = self._ts, self._utc, self._chain_date
        today, lo_ord, now = self.today_ord, self.lo_ord, spec.now_utc
        store_ids, store_zone, n_stores = self.store_ids, self.store_zone, len(self.store_ids)
        tails_by_quarter, product_tables, month_of = self.tails, self.product_tables, self.month_of
        product_split, chronic_table = self.product_split, self.chronic_table
        zone_offsets = self.zone_offsets
        type_retail, type_preorder, type_delivery = (
            self.type_retail,
            self.type_preorder,
            self.type_delivery,
        )
        taken_phones, taken_cards = spec.taken_phones, spec.taken_cards
        taken_ext = spec.taken_external_ids
        n_male, n_female = len(cat.MALE_FIRST), len(cat.FEMALE_FIRST)
        n_surnames, n_patronymics = len(cat.SURNAMES), len(cat.PATRONYMICS)
        n_streets = len(cat.STREETS)
        counts: dict[str, int] = {}

        for ordinal, behaviour in zip(ordinals, behaviours, strict=True):
            cid = spec.first_ids["customer"] + ordinal
            cid_s = str(cid)
            counts[behaviour] = counts.get(behaviour, 0) + 1

            # --- the person ---
            female = r() < 0.6
            surname_i = int(r() * n_surnames)
            patronymic = cat.PATRONYMICS[int(r() * n_patronymics)][1 if female else 0]
            if female:
                first_i = int(r() * n_female)
                first, last = cat.FEMALE_FIRST[first_i], self.surnames_f[surname_i]
                tr_first, tr_last = self.tr_female[first_i], self.tr_surname_f[surname_i]
            else:
                first_i = int(r() * n_male)
                first, last = cat.MALE_FIRST[first_i], cat.SURNAMES[surname_i]
                tr_first, tr_last = self.tr_male[first_i], self.tr_surname_m[surname_i]
            age = 18 + int(72 * (r() + r() + r()) / 3)  # 18-89, most 35-70
            birth_ord = today - int(age * 365.25) - int(r() * 365)
            birth = dt.date.fromordinal(birth_ord).isoformat() if r() < 0.9 else NULL
            city_i = self.city_table[int(r() * len(self.city_table))]
            city_stores = self.city_stores[city_i]
            home = city_stores[int(r() * len(city_stores))]
            if r() < 0.7:
                street = cat.STREETS[int(r() * n_streets)]
                house = str(1 + int(r() * 120))
                if r() < 0.15:
                    house += ("к1", "к2", "А", "Б", "с1")[int(r() * 5)]
                flat = str(1 + int(r() * 300)) if r() < 0.85 else ""
            else:
                street = house = flat = ""
            if r() < 0.35:
                household = NULL
                household_n = 0
            else:
                household_n = (1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5)[int(r() * 11)]
                household = str(household_n)

            phone = phone_for(cid) if r() < 0.97 else None
            if phone in taken_phones:
                phone = None
            card = card_for(cid) if r() < 0.85 else None
            if card in taken_cards:
                card = None
            if r() < 0.55:
                domain = self.domains[int(r() * 100)]
                pattern = int(r() * 3)
                if pattern == 0:
                    local = f"{tr_first}.{tr_last}{cid}"
                elif pattern == 1:
                    local = f"{tr_first[0]}{tr_last}{cid}"
                else:
                    local = f"{tr_last}.{cid}"
                email = f"{local}@{domain}"
            else:
                email = None
            x = r()
            source = (
                "pos"
                if x < 0.70
                else "app"
                if x < 0.88
                else "site"
                if x < 0.98
                else "contact_centre"
            )

            # --- the purchase history decides when the customer registered ---
            days = self._days(behaviour, r)
            if days:
                created_day = days[0] - 1 - int(r() * 40)  # registered before buying
                if behaviour in (VIP, REGULAR, LAPSED) and r() < 0.3:
                    created_day = self.start_ord - int(r() * 4 * 365)  # a customer for years
            else:
                created_day = self.start_ord + int(r() * (today - self.start_ord + 1))
            created_day = max(created_day, lo_ord)
            created_e = utc(0, created_day, _OPEN_SECS + int(r() * (_CLOSE_SECS - _OPEN_SECS)))
            if created_e > now:
                created_e = now - int(r() * 3600)
            created = ts(created_e)
            customers.append(
                f"{cid_s}\t{phone or NULL}\t{email or NULL}\t{card or NULL}\t{last}\t{first}\t"
                f"{patronymic}\t{birth}\t{'F' if female else 'M'}\t{self.cities[city_i]}\t"
                f"{street}\t{house}\t{flat}\t{household}\t{source}\t{created}\t{created}\n"
            )

            # --- family ---
            if household_n >= 2 and r() < 0.6:
                for k in range(min(3, household_n - 1, 1 + int(r() * 3))):
                    family.append(self._family_row(cid_s, k, female, surname_i, age, r))

            # --- external ids and online habits ---
            p_app = p_site = 0.0
            if r() < 0.35 or source == "app":
                value = app_id_for(cid)
                if ("app", value) not in taken_ext:
                    external.append(f"{cid_s}\tapp\t{value}\t{created}\n")
                    p_app = 0.1 + r() * 0.3
            if r() < 0.25 or source == "site":
                value = site_id_for(cid)
                if ("site", value) not in taken_ext:
                    external.append(f"{cid_s}\tsite\t{value}\t{created}\n")
                    p_site = 0.05 + r() * 0.2
            if phone and r() < 0.03:
                value = till_notation(phone, cid)
                if ("pos", value) not in taken_ext:
                    external.append(f"{cid_s}\tpos\t{value}\t{created}\n")

            # --- consents: one row per grant or withdrawal ---
            self._consents(consents, cid_s, source, created_e, phone, email, r)

            # --- purchases ---
            if days:
                if behaviour == VIP:
                    pct = 5 if r() < 0.6 else 7
                elif behaviour == REGULAR:
                    pct = (0, 3, 3, 5)[int(r() * 4)]
                elif behaviour == GROWING:
                    pct = (0, 3)[int(r() * 2)]
                else:
                    pct = 0
                favourites = []
                if chronic_table and behaviour in (VIP, REGULAR, GROWING, LAPSED):
                    for _ in range(1 + int(r() * 3)):
                        favourites.append(chronic_table[int(r() * len(chronic_table))])
                n_fav = len(favourites)
                ext_prefix = f"DM{cid}-"
                for k, day in enumerate(days):
                    secs = _OPEN_SECS + int(r() * (_CLOSE_SECS - _OPEN_SECS))
                    store = home if r() < 0.85 else int(r() * n_stores)
                    zone = store_zone[store]
                    e = (day - _EPOCH_ORD) * 86400 + secs - zone_offsets[zone][day - lo_ord]
                    if e > now:
                        e = now - int(r() * 3600)  # today's purchases happened before now
                    stamp = ts(e)
                    x = r()
                    if x < p_app:
                        src = "app"
                        ptype = type_delivery if r() < 0.4 else type_preorder
                        order_ref = f"A{cid}-{k + 1}"
                    elif x < p_app + p_site:
                        src = "site"
                        ptype = type_delivery if r() < 0.3 else type_preorder
                        order_ref = f"W{cid}-{k + 1}"
                    else:
                        src, ptype, order_ref = "pos", type_retail, ""
                    y = r()
                    status = "completed" if y >= 0.025 else "cancelled" if y < 0.015 else "returned"

                    quarter = (today - day) // 91
                    tails = tails_by_quarter[quarter]
                    table = product_tables[month_of[day - lo_ord]]
                    position = len(purchases)
                    picked: list[int] = []
                    gross = 0
                    for _ in range(_LINES_TABLE[int(r() * 100)]):
                        if n_fav and r() < 0.35:
                            p = favourites[int(r() * n_fav)]
                        else:
                            p = table[int(r() * _PRODUCT_TABLE_SIZE)]
                        if p in picked:
                            continue  # the same product twice: one line
                        picked.append(p)
                        q = _QTY_TABLE[int(r() * 100)]
                        if q == 3 and not product_split[p]:
                            q = 0
                        tail, amount = tails[p][q]
                        gross += amount
                        lp_append(position)
                        lt_append(tail)
                    discount = gross * (pct + (10 if r() < 0.05 else 0)) // 100
                    total = gross - discount
                    bonus = min(total, (50 + int(r() * 450)) * 100) if r() < 0.08 else 0
                    p_append(
                        f"{src}\t{store_ids[store]}\t{ext_prefix}{k + 1}\t{cid_s}\t{stamp}\t"
                        f"{chain_date(e)}\t{ptype}\t{status}\t{money(total)}\t"
                        f"{money(discount) if discount else '0.00'}\t"
                        f"{money(bonus) if bonus else '0.00'}\t{order_ref}\t{stamp}\t{stamp}\n"
                    )

            # --- reservations on the website ---
            if r() < self.reservation_share:
                reservations.append(self._reservation_row(cid, home, r))

        return Block(
            index=block_index,
            customer_rows=customers,
            rests={
                "family": family,
                "external_id": external,
                "consent": consents,
                "purchase": purchases,
                "reservation": reservations,
            },
            line_purchase=line_purchase,
            line_tail=line_tail,
            behaviours=counts,
        )

    def _family_row(self, cid_s: str, k: int, female: bool, surname_i: int, age: int, r) -> str:
        """One relative: a spouse first (adults), then children or parents by the customer's age."""
        if k == 0 and age >= 22:
            relation, rel_female, rel_age = "spouse", not female, max(18, age + int(r() * 9) - 4)
        elif age < 45:
            if r() < 0.7:
                relation, rel_female, rel_age = "child", r() < 0.5, max(0, age - 22 - int(r() * 10))
            else:
                relation, rel_female, rel_age = "parent", r() < 0.6, age + 22 + int(r() * 10)
        elif age >= 60:
            relation, rel_female, rel_age = "grandchild", r() < 0.5, int(r() * 15)
        else:
            relation, rel_female, rel_age = "child", r() < 0.5, max(0, age - 22 - int(r() * 12))
        if rel_female:
            name = (
                f"{cat.FEMALE_FIRST[int(r() * len(cat.FEMALE_FIRST))]} {self.surnames_f[surname_i]}"
            )
        else:
            name = f"{cat.MALE_FIRST[int(r() * len(cat.MALE_FIRST))]} {cat.SURNAMES[surname_i]}"
        birth_ord = self.today_ord - int(rel_age * 365.25) - int(r() * 365)
        birth = dt.date.fromordinal(birth_ord).isoformat() if r() < 0.8 else NULL
        return f"{cid_s}\t{name}\t{relation}\t{birth}\t{'F' if rel_female else 'M'}\n"

    def _consents(
        self, out: list[str], cid_s: str, source: str, created_e: int, phone, email, r
    ) -> None:
        """Grants at registration, per channel; a few withdrawn later (an append-only history)."""
        stamp = self._ts(created_e + 30)
        note = "Анкета в аптеке" if source == "pos" else ""
        if r() < 0.9:
            out.append(f"{cid_s}\tpersonal_data\t1\t{source}\t{stamp}\t{stamp}\t{NULL}\t{note}\n")
        for channel, share, needs in (
            ("sms", 0.6, phone),
            ("email", 0.5, email),
            ("viber", 0.15, phone),
            ("vk", 0.08, True),
            ("calls", 0.2, phone),
        ):
            if not needs or r() >= share:
                continue
            out.append(f"{cid_s}\t{channel}\t1\t{source}\t{stamp}\t{stamp}\t{NULL}\t{note}\n")
            if r() < 0.06:  # unsubscribed later
                later = created_e + 86400 + int(r() * max(1, self.spec.now_utc - created_e - 86400))
                if later <= self.spec.now_utc:
                    when = self._ts(later)
                    how = "app" if r() < 0.5 else "site"
                    why = "Отписка по ссылке" if channel == "email" else "Отказ от рассылки"
                    out.append(f"{cid_s}\t{channel}\t0\t{how}\t{when}\t{when}\t{NULL}\t{why}\n")

    def _reservation_row(self, cid: int, store: int, r) -> str:
        """A website reservation of an OTC product made in the last ten days."""
        now = self.spec.now_utc
        day = self.today_ord - int(r() * 10)
        created = self._utc(self.store_zone[store], day, _OPEN_SECS + int(r() * 50400))
        if created > now:
            created = now - int(r() * 3600)
        deadline = created + 2 * 86400
        if deadline > now:
            status = "active" if r() < 0.6 else "picked_up"
        else:
            x = r()
            status = "picked_up" if x < 0.7 else "cancelled" if x < 0.85 else "expired"
        updated = created if status == "active" else min(now, created + int(r() * 2 * 86400))
        product = self.product_ids[self.otc_table[int(r() * len(self.otc_table))]]
        qty = "1.000" if r() < 0.8 else "2.000"
        return (
            f"{cid}\t{self.store_ids[store]}\t{product}\t{qty}\t{status}\tsite\tRS{cid:08d}\t"
            f"{self._ts(deadline)}\t{self._ts(created)}\t{self._ts(updated)}\n"
        )

    # --- phase 2 -------------------------------------------------------------------------------

    @staticmethod
    def render(block: Block, bases: dict[str, int]) -> dict[str, str]:
        """COPY text per table for a planned block, given each table's first id in this block."""
        out = {"customer": "".join(block.customer_rows)}
        for table, rows in block.rests.items():
            out[table] = "".join([f"{i}\t{row}" for i, row in enumerate(rows, bases[table])])
        purchase_base = bases["purchase"]
        out["line"] = "".join(
            [
                f"{i}\t{purchase_base + position}\t{tail}"
                for i, position, tail in zip(
                    count(bases["line"]), block.line_purchase, block.line_tail, strict=False
                )
            ]
        )
        return out


def iter_blocks(spec: Spec) -> Iterator[tuple[Block, dict[str, str]]]:
    """Every block in order with its COPY text: the single-process path (SQLite, tests)."""
    generator = Generator(spec)
    bases = {table: spec.first_ids[table] for table in TABLES}
    for index in range(spec.n_blocks):
        block = generator.plan(index)
        chunks = generator.render(block, bases)
        for table, n in block.counts().items():
            bases[table] += n
        yield block, chunks
