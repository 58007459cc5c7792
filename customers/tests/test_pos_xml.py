"""The POS XML parsing layer (customers.pos_xml) against ../shared/formats/pos-xml.md.

No database: the parser is pure. Hostile files are tested twice: through the public functions,
and against lxml with our parser options alone, so the defence does not rest on one layer.
"""

import hashlib
import os
import resource
import select
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from customers.models import Customer, Product, Purchase, PurchaseLine, PurchaseType, Store
from customers.pos_xml import (
    PosCustomer,
    PosFileError,
    PosHeader,
    PosLine,
    PosPurchase,
    PosRejection,
    iter_pos_purchases,
    parse_aware_datetime,
    parse_money,
    parse_quantity,
    read_pos_header,
    scan_pos_file,
    stream,
    values,
)
from customers.pos_xml.stream import PARSER_OPTIONS
from customers.tests.pos_xml_builders import pos_xml_bytes, write_pos_file

MSK = timezone(timedelta(hours=3))

# The example of the spec, verbatim.
SPEC_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<export store="A-017" generated="2026-11-20T23:00:00+03:00" version="1">
  <purchase id="000123" datetime="2026-11-20T14:03:11+03:00" type="retail" status="completed">
    <customer card="2900000012345" phone="+7 (912) 345-67-89" email="anna@example.ru"
              last_name="Иванова" first_name="Анна" birth_date="1985-04-12"/>
    <line sku="4601234567890" name="Нурофен таб. 200 мг №20" qty="1" price="289.00"/>
    <line sku="4607001234561" name="Маска медицинская №10" qty="2" price="55.50"/>
    <discount>20.00</discount>
    <bonus spent="50.00"/>
    <total>330.00</total>
  </purchase>
  <purchase id="000124" datetime="2026-11-20T15:40:00+03:00" type="retail" status="completed">
    <line sku="4601234567890" name="Нурофен таб. 200 мг №20" qty="1" price="289.00"/>
    <total>289.00</total>
  </purchase>
</export>
""".encode()

NUROFEN = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "289.00"}
MASK = {"sku": "4607001234561", "name": "Маска медицинская №10", "qty": "2", "price": "55.50"}
ANNA = {"card": "2900000012345", "phone": "+7 (912) 345-67-89"}
HEADER = '<export store="A-017" generated="2026-11-20T23:00:00+03:00" version="1">'
ONE_PURCHASE = (
    '<purchase id="1" datetime="2026-11-20T15:40:00+03:00" type="retail" status="completed">'
    '<line sku="1" name="n" qty="1" price="1.00"/><total>1.00</total></purchase>'
)


def purchase(**overrides):
    return {
        "id": "000124",
        "datetime": "2026-11-20T15:40:00+03:00",
        "lines": [NUROFEN],
        **overrides,
    }


def parse_all(data: bytes) -> list:
    return list(iter_pos_purchases(BytesIO(data)))


def parse_one(**overrides):
    items = parse_all(pos_xml_bytes("A-017", [purchase(**overrides)]))
    assert len(items) == 1
    return items[0]


def rejected(**overrides) -> PosRejection:
    item = parse_one(**overrides)
    assert isinstance(item, PosRejection), item
    assert item.position == 1
    return item


def file_error(data: bytes) -> str:
    """The message of the PosFileError that both the scan and the parse raise for a file."""
    with pytest.raises(PosFileError) as scanned:
        scan_pos_file(BytesIO(data))
    with pytest.raises(PosFileError) as parsed:
        list(iter_pos_purchases(BytesIO(data)))
    assert str(parsed.value) == str(scanned.value)
    return str(scanned.value)


def yielded_before_refusal(data: bytes) -> list:
    yielded = []
    with pytest.raises(PosFileError):
        yielded.extend(iter_pos_purchases(BytesIO(data)))
    return yielded


# --- The spec's example -------------------------------------------------------------------------


def test_the_spec_examples_first_purchase_is_rejected_by_the_specs_own_total_rule():
    # 289.00 + 2 × 55.50 − 20.00 = 380.00; the example says 330.00, i.e. it also took off the
    # 50.00 of bonuses, which the rule ("total = sum(qty × price) − discount") does not.
    first, second = parse_all(SPEC_EXAMPLE)

    assert first == PosRejection(
        purchase_id="000123",
        position=1,
        field="total",
        reason="Total 330.00 does not match the lines 400.00 − discount 20.00 = 380.00.",
    )
    assert isinstance(second, PosPurchase)


def test_the_spec_examples_second_purchase_parses_to_exact_values():
    second = parse_all(SPEC_EXAMPLE)[1]

    assert second == PosPurchase(
        purchase_id="000124",
        purchased_at=datetime(2026, 11, 20, 15, 40, tzinfo=MSK),
        type_code="retail",
        status="completed",
        order_ref="",
        customer=None,
        lines=(
            PosLine(
                sku="4601234567890",
                name="Нурофен таб. 200 мг №20",
                qty=Decimal("1.000"),
                price=Decimal("289.00"),
                amount=Decimal("289.00"),
            ),
        ),
        discount=Decimal("0.00"),
        bonus_spent=Decimal("0.00"),
        total=Decimal("289.00"),
        position=2,
    )


def test_the_spec_example_with_total_380_parses_to_exact_values():
    first = parse_all(SPEC_EXAMPLE.replace(b"<total>330.00", b"<total>380.00"))[0]

    assert first == PosPurchase(
        purchase_id="000123",
        purchased_at=datetime(2026, 11, 20, 14, 3, 11, tzinfo=MSK),
        type_code="retail",
        status="completed",
        order_ref="",
        customer=PosCustomer(
            card="2900000012345",
            phone="+79123456789",
            email="anna@example.ru",
            last_name="Иванова",
            first_name="Анна",
            birth_date=date(1985, 4, 12),
        ),
        lines=(
            PosLine(
                "4601234567890",
                "Нурофен таб. 200 мг №20",
                Decimal(1),
                Decimal("289.00"),
                Decimal("289.00"),
            ),
            PosLine(
                "4607001234561",
                "Маска медицинская №10",
                Decimal(2),
                Decimal("55.50"),
                Decimal("111.00"),
            ),
        ),
        discount=Decimal("20.00"),
        bonus_spent=Decimal("50.00"),
        total=Decimal("380.00"),
        position=1,
    )
    assert first.purchased_at.utcoffset() == timedelta(hours=3)
    assert str(first.lines[1].amount) == "111.00"


def test_scanning_gives_the_header_the_sha256_of_the_bytes_the_size_and_the_purchase_count():
    scan = scan_pos_file(BytesIO(SPEC_EXAMPLE))

    assert scan.header == PosHeader("A-017", datetime(2026, 11, 20, 23, 0, tzinfo=MSK), "1")
    assert scan.sha256 == hashlib.sha256(SPEC_EXAMPLE).hexdigest()
    assert scan.size == len(SPEC_EXAMPLE)
    assert scan.purchases == 2  # the rejected one included


def test_a_path_works_as_well_as_a_file_object(tmp_path):
    path = tmp_path / "export.xml"
    path.write_bytes(SPEC_EXAMPLE)

    assert scan_pos_file(path).sha256 == hashlib.sha256(SPEC_EXAMPLE).hexdigest()
    assert scan_pos_file(str(path)).purchases == 2
    assert read_pos_header(path).store_code == "A-017"
    assert [item.position for item in iter_pos_purchases(path)] == [1, 2]


def test_scanning_and_reading_the_header_leave_a_file_object_where_it_was():
    file = BytesIO(SPEC_EXAMPLE)

    assert read_pos_header(file).store_code == "A-017"
    assert file.tell() == 0
    scan_pos_file(file)
    assert file.tell() == 0
    assert len(list(iter_pos_purchases(file))) == 2  # the import's order: scan, then parse


def test_reading_the_header_does_not_read_the_rest_of_the_file():
    broken_after_the_header = f"{HEADER}<purchase".encode() + b"\xff" * 100_000

    assert read_pos_header(BytesIO(broken_after_the_header)).store_code == "A-017"


# --- Files refused whole ------------------------------------------------------------------------


def test_a_file_that_is_not_well_formed_is_refused_with_lxmls_line_and_column():
    message = file_error(f'{HEADER}\n{ONE_PURCHASE}\n<purchase id="2"></line>\n</export>'.encode())

    assert "not well-formed" in message
    assert "Opening and ending tag mismatch" in message
    assert "line 3, column" in message


def test_an_empty_file_is_refused():
    assert file_error(b"") == "The file is empty."


def test_a_file_of_blanks_is_refused():
    assert "not well-formed" in file_error(b"   \n ")


def test_an_undeclared_entity_reference_is_refused_with_the_real_reason():
    # lxml's own exception says "no element found (line 0)" here; the parser log is better.
    data = f"{HEADER}{ONE_PURCHASE.replace('<total>', '&foo;<total>')}</export>".encode()
    message = file_error(data)

    assert "Entity 'foo' not defined" in message
    assert "line 1, column" in message
    assert yielded_before_refusal(data) == []


@pytest.mark.parametrize(
    "root",
    ["<purchases>", '<purchase id="1">', '<export xmlns="urn:pos">', "<foo:export xmlns:foo='u'>"],
)
def test_a_file_with_another_root_element_is_refused(root):
    name = root[1:].split()[0].rstrip(">")
    data = f"{root}{ONE_PURCHASE}</{name}>".encode()

    assert "not <export>" in file_error(data)


def test_purchases_under_a_wrong_root_are_refused_before_any_is_yielded():
    header = HEADER.replace("<export", "<purchases")
    data = f"{header}{ONE_PURCHASE}</purchases>".encode()

    assert "The root element is <purchases>" in file_error(data)
    assert yielded_before_refusal(data) == []


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ('generated="2026-11-20T23:00:00+03:00" version="1"', "no store attribute"),
        ('store="A-017" version="1"', "no generated attribute"),
        ('store="A-017" generated="2026-11-20T23:00:00+03:00"', "no version attribute"),
        ('store=" " generated="2026-11-20T23:00:00+03:00" version="1"', "no store attribute"),
        ('store="A" generated="2026-11-20T23:00:00+03:00" version="2"', "version “2” is not"),
        ('store="A" generated="2026-11-20T23:00:00" version="1"', "has no UTC offset"),
        ('store="A" generated="20.11.2026 23:00" version="1"', "not an ISO 8601 date and time"),
        (f'store="{"A" * 51}" generated="2026-11-20T23:00:00+03:00" version="1"', "longer than 50"),
    ],
)
def test_a_missing_or_invalid_header_attribute_refuses_the_file(attributes, reason):
    data = f"<export {attributes}>{ONE_PURCHASE}</export>".encode()

    assert reason in file_error(data)
    with pytest.raises(PosFileError, match=reason):
        read_pos_header(BytesIO(data))


def test_a_bad_header_is_refused_even_in_a_file_without_purchases():
    assert "no version attribute" in file_error(b'<export store="A" generated="x"/>')


def test_a_file_without_purchases_is_a_valid_empty_export():
    data = f"{HEADER}</export>".encode()

    assert scan_pos_file(BytesIO(data)).purchases == 0
    assert parse_all(data) == []


def test_a_file_that_is_not_utf8_is_refused_even_when_it_declares_its_encoding():
    purchase_1251 = ONE_PURCHASE.replace('name="n"', 'name="Нурофен"')
    data = f'<?xml version="1.0" encoding="windows-1251"?>{HEADER}{purchase_1251}</export>'

    assert "not well-formed UTF-8 XML" in file_error(data.encode("cp1251"))


def test_a_purchase_nested_deeper_than_the_root_refuses_the_file():
    data = f"{HEADER}\n<batch>{ONE_PURCHASE}</batch></export>".encode()

    assert file_error(data) == "Line 2: <purchase> must be a direct child of <export>."
    assert yielded_before_refusal(data) == []


def test_a_file_truncated_in_the_middle_is_refused_by_the_scan_though_parsing_yields_its_start():
    data = (
        f"{HEADER}\n" + ONE_PURCHASE.replace('id="1"', 'id="A"') + "\n" + ONE_PURCHASE + "\n"
    ).encode() + ONE_PURCHASE.encode()[:50]

    assert "not well-formed" in file_error(data)
    assert [item.purchase_id for item in yielded_before_refusal(data)] == ["A", "1"]


def test_content_after_the_root_element_is_refused():
    data = f"{HEADER}{ONE_PURCHASE}</export><export/>".encode()

    assert "Extra content" in file_error(data)


def test_a_file_that_goes_on_without_completing_a_purchase_is_refused(monkeypatch):
    monkeypatch.setattr(stream, "MAX_PURCHASE_BYTES", 100_000)
    lines = '<line sku="1" name="n" qty="1" price="1.00"/>' * 5000
    data = f'{HEADER}{ONE_PURCHASE}<purchase id="2">{lines}</purchase></export>'.encode()

    assert "without a complete <purchase> after purchase 1" in file_error(data)
    assert len(yielded_before_refusal(data)) == 1


def test_a_text_mode_file_is_a_programming_error():
    with pytest.raises(TypeError, match="binary mode"):
        scan_pos_file(StringIO(SPEC_EXAMPLE.decode()))


# --- Hostile files ------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE export [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
    + HEADER
    + '<purchase id="&lol9;"><line sku="1" name="&lol9;" qty="1" price="1.00"/>&lol9;'
    + "<total>1.00</total></purchase></export>"
).encode()
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE export [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + HEADER
    + '<purchase id="1" datetime="2026-11-20T15:40:00+03:00" type="retail" status="completed">'
    + '<line sku="1" name="n" qty="1" price="1.00"/><total>1.00</total>&xxe;</purchase></export>'
).encode()


@pytest.fixture
def listener():
    """A local TCP port nobody should connect to; tells whether anybody tried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(5)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"

        def contacted() -> bool:
            return bool(select.select([sock], [], [], 0.2)[0])

        yield url, contacted


def external_dtd(url: str) -> bytes:
    return f'<!DOCTYPE export SYSTEM "{url}pos.dtd">{HEADER}{ONE_PURCHASE}</export>'.encode()


def parameter_entity(url: str) -> bytes:
    return (
        f'<!DOCTYPE export [<!ENTITY % remote SYSTEM "{url}evil.dtd"> %remote;]>'
        f"{HEADER}{ONE_PURCHASE}</export>"
    ).encode()


def test_a_billion_laughs_file_is_refused_at_once_in_flat_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()

    assert "DTD" in file_error(BILLION_LAUGHS)
    assert yielded_before_refusal(BILLION_LAUGHS) == []
    assert time.perf_counter() - started < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KB


def test_an_xxe_file_is_refused_and_nothing_of_etc_passwd_comes_out():
    message = file_error(XXE)
    assert yielded_before_refusal(XXE) == []

    assert "DTD" in message
    assert "root:" not in message


def test_an_external_dtd_is_refused_without_touching_the_network(listener):
    url, contacted = listener

    assert "DTD" in file_error(external_dtd(url))
    assert yielded_before_refusal(external_dtd(url)) == []
    assert not contacted()


def test_a_parameter_entity_is_refused_without_touching_the_network(listener):
    url, contacted = listener

    assert "DTD" in file_error(parameter_entity(url))
    assert yielded_before_refusal(parameter_entity(url)) == []
    assert not contacted()


def test_a_doctype_split_across_two_reads_is_still_refused():
    class Trickle(BytesIO):
        def read(self, size=-1):
            return super().read(4)  # "<!DO" then "CTYP"...: no read holds it whole

    with pytest.raises(PosFileError, match="DTD"):
        scan_pos_file(Trickle(XXE))


def test_a_utf16_file_cannot_smuggle_a_doctype_past_the_byte_check():
    data = XXE.decode().replace('"1.0"?', '"1.0" encoding="UTF-16"?', 1).encode("utf-16")

    assert yielded_before_refusal(data) == []
    with pytest.raises(PosFileError, match=r"not well-formed|DTD"):
        scan_pos_file(BytesIO(data))


# The same attacks against lxml with our options alone, without our byte-level DOCTYPE check.


def lxml_alone(data: bytes) -> list[etree._Element]:
    context = etree.iterparse(BytesIO(data), events=("end",), **PARSER_OPTIONS)
    return [element for _event, element in context]


def test_lxml_with_our_options_refuses_billion_laughs_by_itself():
    started = time.perf_counter()
    with pytest.raises(etree.XMLSyntaxError, match="amplification"):
        lxml_alone(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1


def test_lxml_with_our_options_does_not_resolve_an_external_entity():
    elements = lxml_alone(XXE)

    assert b"root:" not in etree.tostring(elements[-1])
    purchase = next(element for element in elements if element.tag == "purchase")
    assert [type(node).__name__ for node in purchase][-1] == "_Entity"  # left unresolved


def test_lxml_with_our_options_fetches_neither_dtds_nor_parameter_entities(listener):
    url, contacted = listener

    for data in (external_dtd(url), parameter_entity(url)):
        elements = lxml_alone(data)
        assert elements[-1].getroottree().docinfo.doctype  # what our header check refuses
    assert not contacted()


def test_the_header_check_refuses_a_doctype_lxml_let_through(monkeypatch):
    monkeypatch.setattr(stream, "_DOCTYPE", b"<never>")  # the byte check switched off

    assert "DTD" in file_error(XXE)
    assert yielded_before_refusal(XXE) == []


# --- Purchases rejected one by one --------------------------------------------------------------


def test_a_bad_purchase_is_reported_and_the_good_ones_around_it_are_parsed():
    items = parse_all(
        pos_xml_bytes("A-017", [purchase(id="1"), purchase(id="2", total="1.00"), purchase(id="3")])
    )

    assert [type(item).__name__ for item in items] == ["PosPurchase", "PosRejection", "PosPurchase"]
    assert [(item.purchase_id, item.position) for item in items] == [("1", 1), ("2", 2), ("3", 3)]


def test_a_purchase_id_that_repeats_in_a_file_is_yielded_each_time_in_order():
    items = parse_all(
        pos_xml_bytes(
            "A-017", [purchase(id="7", status="completed"), purchase(id="7", status="returned")]
        )
    )

    assert [(item.purchase_id, item.status, item.position) for item in items] == [
        ("7", "completed", 1),
        ("7", "returned", 2),
    ]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_purchase_without_an_id_is_rejected(value):
    rejection = rejected(id=value)

    assert (rejection.purchase_id, rejection.field) == (None, "id")
    assert rejection.reason == "Required, but missing or empty."


def test_a_purchase_id_longer_than_the_column_is_rejected():
    rejection = rejected(id="9" * 65)

    assert rejection.field == "id"
    assert "Longer than 64 characters" in rejection.reason


def test_ids_and_codes_are_stripped():
    item = parse_one(id=" 000124 ", type=" retail ", status=" returned ", order_ref=" W-1 ")

    assert (item.purchase_id, item.type_code, item.status, item.order_ref) == (
        "000124",
        "retail",
        "returned",
        "W-1",
    )


def test_a_purchase_without_a_datetime_is_rejected():
    rejection = rejected(datetime=None)

    assert (rejection.purchase_id, rejection.field) == ("000124", "datetime")
    assert "missing" in rejection.reason


@pytest.mark.parametrize(
    "value",
    [
        "20.11.2026 15:40",
        "2026-11-20",
        "2026-11-20x15:40:00+03:00",
        "tomorrow",
        "2026-13-01T00:00:00+03:00",
    ],
)
def test_a_datetime_that_is_not_iso_8601_is_rejected(value):
    rejection = rejected(datetime=value)

    assert rejection.field == "datetime"
    assert "is not an ISO 8601 date and time" in rejection.reason


def test_a_datetime_without_an_offset_is_rejected():
    rejection = rejected(datetime="2026-11-20T15:40:00")

    assert rejection.field == "datetime"
    assert rejection.reason == "“2026-11-20T15:40:00” has no UTC offset (such as +03:00)."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T12:40:00Z", datetime(2026, 11, 20, 12, 40, tzinfo=UTC)),
        ("2026-11-20 15:40:00+03:00", datetime(2026, 11, 20, 15, 40, tzinfo=MSK)),
        ("2026-11-20T15:40:00.250+0300", datetime(2026, 11, 20, 15, 40, 0, 250_000, tzinfo=MSK)),
    ],
)
def test_iso_8601_variants_with_an_offset_are_accepted(value, expected):
    assert parse_one(datetime=value).purchased_at == expected


def test_a_purchase_without_a_type_is_rejected():
    rejection = rejected(type=None)

    assert (rejection.field, rejection.reason) == ("type", "Required, but missing or empty.")


def test_the_type_code_is_not_checked_against_the_reference_list_here():
    assert parse_one(type="barter").type_code == "barter"


@pytest.mark.parametrize("value", ["done", "Completed", "returned,"])
def test_a_status_other_than_the_three_is_rejected(value):
    rejection = rejected(status=value)

    assert rejection.field == "status"
    assert "is not one of completed, cancelled, returned" in rejection.reason


def test_a_purchase_without_a_status_is_rejected():
    assert rejected(status=None).field == "status"


@pytest.mark.parametrize("status", ["completed", "cancelled", "returned"])
def test_each_of_the_three_statuses_is_accepted(status):
    assert parse_one(status=status).status == status


def test_an_order_ref_is_kept_and_defaults_to_empty():
    assert parse_one(order_ref="APP-100500").order_ref == "APP-100500"
    assert parse_one().order_ref == ""


def test_a_purchase_without_a_customer_is_anonymous():
    assert parse_one().customer is None


def test_a_customer_is_normalised():
    item = parse_one(
        customer={
            "card": "2900-0000-12345",
            "phone": "8 (912) 345-67-89",
            "email": " Anna@Example.RU ",
            "last_name": " Иванова ",
        }
    )

    assert item.customer == PosCustomer(
        "2900000012345", "+79123456789", "anna@example.ru", "Иванова", "", None
    )


@pytest.mark.parametrize("identifier", ["card", "phone", "email"])
def test_any_one_identifier_is_enough_for_a_customer(identifier):
    value = {"card": "2900000012345", "phone": "+79123456789", "email": "a@b.ru"}[identifier]

    assert getattr(parse_one(customer={identifier: value}).customer, identifier) == value


@pytest.mark.parametrize(
    "customer", [{"last_name": "Иванова"}, {"card": " ", "phone": "", "email": ""}]
)
def test_a_customer_without_card_phone_or_email_is_rejected(customer):
    rejection = rejected(customer=customer)

    assert rejection.field == "customer"
    assert rejection.reason == "A customer needs a card, a phone or an email."


@pytest.mark.parametrize(
    ("identifier", "value", "reason"),
    [
        ("card", "12345", "A loyalty card number has 13 digits"),
        ("card", "29000000123AB", "A loyalty card number has 13 digits"),
        ("phone", "12345", "is not a valid phone number"),
        ("phone", "+7 (000) 000-00-00", "is not a valid phone number"),
        ("email", "anna@", "is not a valid email address"),
    ],
)
def test_an_invalid_identifier_rejects_the_purchase(identifier, value, reason):
    rejection = rejected(customer={**ANNA, identifier: value})

    assert rejection.field == f"customer.{identifier}"
    assert reason in rejection.reason


def test_the_same_invalid_phone_is_rejected_every_time_it_appears():
    bad = {"phone": "12345"}
    items = parse_all(pos_xml_bytes("A", [purchase(id=str(i), customer=bad) for i in range(3)]))

    assert [item.field for item in items] == ["customer.phone"] * 3


@pytest.mark.parametrize("value", ["12.04.1985", "1985-02-30", "yesterday"])
def test_a_birth_date_that_is_not_a_date_is_rejected(value):
    rejection = rejected(customer={**ANNA, "birth_date": value})

    assert rejection.field == "customer.birth_date"
    assert "is not an ISO 8601 date" in rejection.reason


@pytest.mark.parametrize("value", ["2026-11-21", "1850-01-01"])
def test_a_birth_date_after_the_purchase_or_before_1900_is_rejected(value):
    rejection = rejected(customer={**ANNA, "birth_date": value})

    assert rejection.field == "customer.birth_date"
    assert rejection.reason == f"{value} is not a plausible birth date."


def test_the_same_customer_born_after_one_purchase_but_before_another_is_judged_per_purchase():
    baby = {**ANNA, "birth_date": "2026-11-20"}
    items = parse_all(
        pos_xml_bytes(
            "A",
            [
                purchase(id="1", customer=baby, datetime="2026-11-21T10:00:00+03:00"),
                purchase(id="2", customer=baby, datetime="2026-11-19T10:00:00+03:00"),
            ],
        )
    )

    assert isinstance(items[0], PosPurchase)
    assert items[0].customer.birth_date == date(2026, 11, 20)
    assert isinstance(items[1], PosRejection)
    assert items[1].field == "customer.birth_date"


def test_a_customer_name_longer_than_the_column_is_rejected():
    rejection = rejected(customer={**ANNA, "first_name": "А" * 101})

    assert rejection.field == "customer.first_name"
    assert "Longer than 100 characters" in rejection.reason


def test_a_purchase_without_lines_is_rejected():
    rejection = rejected(lines=[], total="0.00")

    assert rejection.field == "line"
    assert rejection.reason == "A purchase needs at least one line."


@pytest.mark.parametrize("attribute", ["sku", "name", "qty", "price"])
def test_a_line_missing_a_required_attribute_is_rejected_naming_the_line(attribute):
    rejection = rejected(lines=[NUROFEN, {**MASK, attribute: None}], total="400.00")

    assert rejection.field == f"line[2].{attribute}"
    assert rejection.reason == "Required, but missing or empty."


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1,5", "is not a quantity"),
        ("1e3", "is not a quantity"),
        ("NaN", "is not a quantity"),
        ("two", "is not a quantity"),
        ("0", "must be greater than zero"),
        ("0.000", "must be greater than zero"),
        ("-1", "must be greater than zero"),
        ("0.1234", "more than three decimal places"),
        ("12345678", "too large"),
    ],
)
def test_a_bad_quantity_is_rejected(value, reason):
    rejection = rejected(lines=[{**NUROFEN, "qty": value}], total="289.00")

    assert rejection.field == "line[1].qty"
    assert reason in rejection.reason


def test_a_split_pack_is_a_decimal_quantity_and_its_amount_is_rounded_half_up():
    # 0.5 × 55.45 = 27.725: half-up gives 27.73 (banker's rounding would give 27.72).
    item = parse_one(lines=[{**MASK, "qty": "0.5", "price": "55.45"}], total="27.73")

    assert item.lines[0].qty == Decimal("0.500")
    assert item.lines[0].amount == Decimal("27.73")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("289,00", "is not an amount of money"),
        ("2.89e2", "is not an amount of money"),
        ("Infinity", "is not an amount of money"),
        ("+289.00", "is not an amount of money"),
        ("289.", "is not an amount of money"),
        ("-1.00", "is negative"),
        ("289.001", "more than two decimal places"),
    ],
)
def test_a_bad_price_is_rejected(value, reason):
    rejection = rejected(lines=[NUROFEN, {**MASK, "price": value}], total="289.00")

    assert rejection.field == "line[2].price"
    assert reason in rejection.reason


def test_a_free_line_is_allowed():
    item = parse_one(lines=[NUROFEN, {**MASK, "price": "0"}])

    assert item.lines[1].price == item.lines[1].amount == Decimal("0.00")


@pytest.mark.parametrize(
    ("field", "key"), [("discount", "discount"), ("bonus.spent", "bonus_spent"), ("total", "total")]
)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("20,00", "is not an amount of money"),
        ("1E1", "is not an amount of money"),
        ("NaN", "is not an amount of money"),
        ("-5.00", "is negative"),
        ("5.005", "more than two decimal places"),
        ("12345678901", "too large"),
    ],
)
def test_discount_bonus_and_total_must_be_money(field, key, value, reason):
    rejection = rejected(**{"total": "289.00", key: value})

    assert rejection.field == field
    assert reason in rejection.reason


def test_a_purchase_without_a_total_is_rejected():
    rejection = rejected(total=None)

    assert (rejection.field, rejection.reason) == ("total", "Required, but missing or empty.")


def test_a_total_that_does_not_match_the_lines_minus_the_discount_is_rejected():
    rejection = rejected(
        lines=[NUROFEN, MASK], discount="20.00", bonus_spent="50.00", total="330.00"
    )

    assert rejection.field == "total"
    assert (
        rejection.reason
        == "Total 330.00 does not match the lines 400.00 − discount 20.00 = 380.00."
    )


def test_bonuses_spent_over_the_total_are_rejected():
    rejection = rejected(bonus_spent="289.01", customer=ANNA)

    assert rejection.field == "bonus.spent"
    assert rejection.reason == "Bonuses spent 289.01 exceed the total 289.00."


def test_bonuses_spent_on_an_anonymous_purchase_are_rejected():
    rejection = rejected(bonus_spent="10.00")

    assert rejection.field == "bonus.spent"
    assert rejection.reason == "Bonuses spent on a purchase without a customer."


def test_bonuses_spent_up_to_the_total_are_accepted():
    assert parse_one(bonus_spent="289.00", customer=ANNA).bonus_spent == Decimal("289.00")


def test_money_without_decimals_or_with_one_is_read_as_kopecks_and_whitespace_is_ignored():
    item = parse_one(lines=[{**NUROFEN, "price": "289"}], discount=" 9.5 ", total="\n  279.50\n")

    assert (item.lines[0].price, item.discount, item.total) == (
        Decimal("289.00"),
        Decimal("9.50"),
        Decimal("279.50"),
    )
    assert str(item.discount) == "9.50"


def test_an_empty_discount_or_bonus_counts_as_none():
    item = parse_all(
        f"{HEADER}{ONE_PURCHASE.replace('<total>', '<discount/><bonus/><total>')}</export>".encode()
    )[0]

    assert (item.discount, item.bonus_spent) == (Decimal("0.00"), Decimal("0.00"))


@pytest.mark.parametrize("tag", ["total", "discount", "customer"])
def test_an_element_that_may_appear_once_appearing_twice_is_rejected(tag):
    element = {
        "total": "<total>1.00</total>",
        "discount": "<discount>0</discount>",
        "customer": '<customer card="2900000012345"/>',
    }[tag]
    rejection = rejected(total="289.00", extra=[element, element])

    assert (rejection.field, rejection.reason) == (tag, "Appears more than once.")


def test_unknown_elements_inside_a_purchase_are_ignored():
    item = parse_one(extra=["<payment kind='card'>289.00</payment>", "<note/>"])

    assert isinstance(item, PosPurchase)
    assert item.total == Decimal("289.00")


def test_comments_and_processing_instructions_are_ignored():
    data = (
        f"{HEADER}<!-- x -->{ONE_PURCHASE.replace('<total>', '<?pi x?><!-- y --><total>')}</export>"
    )

    assert isinstance(parse_all(data.encode())[0], PosPurchase)


def test_a_hostile_value_is_not_echoed_whole_in_the_reason():
    rejection = rejected(status="x" * 10_000)

    assert len(rejection.reason) < 200


def test_the_first_problem_in_document_order_is_the_one_reported():
    rejection = rejected(lines=[{**NUROFEN, "qty": "0"}, {**MASK, "price": "x"}], total="x")

    assert rejection.field == "line[1].qty"


@pytest.mark.parametrize(
    ("limit", "model", "field"),
    [
        ("MAX_STORE_CODE", Store, "code"),
        ("MAX_PURCHASE_ID", Purchase, "external_id"),
        ("MAX_ORDER_REF", Purchase, "order_ref"),
        ("MAX_TYPE_CODE", PurchaseType, "code"),
        ("MAX_SKU", Product, "sku"),
        ("MAX_PRODUCT_NAME", Product, "name"),
        ("MAX_PERSON_NAME", Customer, "last_name"),
        ("MAX_PERSON_NAME", Customer, "first_name"),
        ("MAX_EMAIL", Customer, "email"),
    ],
)
def test_the_length_limits_are_those_of_the_columns(limit, model, field):
    assert getattr(values, limit) == model._meta.get_field(field).max_length


def test_the_money_and_quantity_limits_are_those_of_the_columns():
    money = Purchase._meta.get_field("total")
    qty = PurchaseLine._meta.get_field("qty")
    digits = {
        "money": money.max_digits - money.decimal_places,
        "qty": qty.max_digits - qty.decimal_places,
    }

    assert digits == {"money": values.MONEY_INTEGER_DIGITS, "qty": values.QTY_INTEGER_DIGITS}


# --- Value parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("289", "289.00"),
        ("289.5", "289.50"),
        ("289.00", "289.00"),
        (" 0 ", "0.00"),
        ("007.10", "7.10"),
    ],
)
def test_parse_money_accepts_zero_to_two_decimals_and_quantizes_to_kopecks(text, expected):
    assert str(parse_money(text)) == expected


@pytest.mark.parametrize(
    "text", ["", "289,00", "1e3", "NaN", "-Infinity", "+1", ".50", "289.", "1 000", "١٢٣", "１２"]
)
def test_parse_money_refuses_what_is_not_plain_dot_decimal_money(text):
    with pytest.raises(ValueError, match="not an amount of money"):
        parse_money(text)


def test_parse_money_refuses_a_number_too_long_to_compute_without_trying():
    with pytest.raises(ValueError, match="too large"):
        parse_money("9" * 100_000)


@pytest.mark.parametrize(
    ("text", "expected"), [("1", "1.000"), ("0.5", "0.500"), ("2.125", "2.125")]
)
def test_parse_quantity_accepts_up_to_three_decimals(text, expected):
    assert str(parse_quantity(text)) == expected


def test_parse_aware_datetime_keeps_the_files_offset():
    assert parse_aware_datetime("2026-11-20T15:40:00+05:00").utcoffset() == timedelta(hours=5)


# --- Round trip ---------------------------------------------------------------------------------

CENT = Decimal("0.01")


def money(max_kopecks: int = 10_000_000):
    return st.integers(0, max_kopecks).map(lambda k: Decimal(k).scaleb(-2))


name_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")), max_size=30
)
lines_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.from_regex(r"[0-9A-Z\-]{1,20}", fullmatch=True),
            "name": name_text.filter(lambda text: text.strip()),
            "qty": st.integers(1, 999_999).map(lambda milli: Decimal(milli).scaleb(-3)),
            "price": money(),
        }
    ),
    min_size=1,
    max_size=5,
)
customers = st.none() | st.fixed_dictionaries(
    {
        "card": st.none() | st.from_regex(r"[0-9]{13}", fullmatch=True),
        "phone": st.none() | st.from_regex(r"[0-9]{7}", fullmatch=True),
        "email": st.none() | st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
        "last_name": st.none() | name_text,
        "first_name": st.none() | name_text,
        "birth_date": st.none() | st.dates(date(1900, 1, 1), date(2020, 12, 31)),
    }
).filter(lambda c: c["card"] or c["phone"] or c["email"])


@st.composite
def purchases(draw, index: int):
    lines = draw(lines_strategy)
    lines_sum = sum(
        ((line["qty"] * line["price"]).quantize(CENT, rounding=ROUND_HALF_UP) for line in lines),
        Decimal("0.00"),
    )
    discount = draw(st.integers(0, int(lines_sum * 100)).map(lambda k: Decimal(k).scaleb(-2)))
    total = lines_sum - discount
    customer = draw(customers)
    bonus = Decimal("0.00")  # only a customer has bonuses to spend
    if customer is not None:
        bonus = draw(st.integers(0, int(total * 100)).map(lambda k: Decimal(k).scaleb(-2)))
    offset = timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60)))
    when = draw(st.datetimes(datetime(2021, 1, 1), datetime(2030, 12, 31))).replace(
        tzinfo=timezone(offset)
    )
    return {
        "id": f"P{index}-" + draw(st.from_regex(r"[0-9A-Za-z]{0,10}", fullmatch=True)),
        "datetime": when,
        "type": draw(st.sampled_from(["retail", "preorder", "delivery"])),
        "status": draw(st.sampled_from(["completed", "cancelled", "returned"])),
        "order_ref": draw(st.none() | st.from_regex(r"[A-Z]{1,3}-[0-9]{1,10}", fullmatch=True)),
        "customer": customer,
        "lines": [
            {**line, "qty": f"{line['qty']:f}", "price": f"{line['price']:f}"} for line in lines
        ],
        "discount": f"{discount:f}",
        "bonus_spent": f"{bonus:f}",
        "total": f"{total:f}",
    }


def expected_purchase(spec: dict, position: int) -> PosPurchase:
    customer = spec["customer"]
    lines = tuple(
        PosLine(
            line["sku"],
            line["name"].strip(),
            Decimal(line["qty"]),
            Decimal(line["price"]),
            (Decimal(line["qty"]) * Decimal(line["price"])).quantize(CENT, rounding=ROUND_HALF_UP),
        )
        for line in spec["lines"]
    )
    return PosPurchase(
        purchase_id=spec["id"],
        purchased_at=spec["datetime"],
        type_code=spec["type"],
        status=spec["status"],
        order_ref=spec["order_ref"] or "",
        customer=None
        if customer is None
        else PosCustomer(
            card=customer["card"],
            phone=customer["phone"] and "+7912" + customer["phone"],
            email=customer["email"] and customer["email"] + "@example.ru",
            last_name=(customer["last_name"] or "").strip(),
            first_name=(customer["first_name"] or "").strip(),
            birth_date=customer["birth_date"],
        ),
        lines=lines,
        discount=Decimal(spec["discount"]),
        bonus_spent=Decimal(spec["bonus_spent"]),
        total=Decimal(spec["total"]),
        position=position,
    )


@st.composite
def files(draw):
    return [draw(purchases(index)) for index in range(draw(st.integers(1, 4)))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_valid_purchases_survive_a_round_trip_through_xml(generated):
    written = []
    for spec in generated:
        customer = spec["customer"]
        if customer is not None:
            customer = {
                **customer,
                "phone": customer["phone"] and "8 (912) " + customer["phone"],
                "email": customer["email"] and customer["email"].upper() + "@Example.RU",
            }
        written.append({**spec, "customer": customer})

    items = parse_all(pos_xml_bytes("A-017", written))

    assert items == [expected_purchase(spec, n) for n, spec in enumerate(generated, 1)]
    assert [item.purchased_at.utcoffset() for item in items] == [
        spec["datetime"].utcoffset() for spec in generated
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.integers(1, 3))
def test_shares_of_a_file_are_its_purchases_split_by_position(generated, parts):
    data = pos_xml_bytes("A-017", [*generated, {**generated[0], "total": "0.01"}])
    whole = parse_all(data)
    shares = [list(iter_pos_purchases(BytesIO(data), share=(k, parts))) for k in range(parts)]
    assert [item.position for item in whole] == list(range(1, len(whole) + 1))
    for k, share in enumerate(shares):
        assert share == [item for item in whole if (item.position - 1) % parts == k]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_the_import_digest_is_the_md5_of_the_repr_of_everything_the_file_says(generated):
    # purchase_digest builds the text itself; digests stored by earlier imports (repr of this
    # list) must stay the same, or every re-exported purchase would count as changed once.
    from customers.pos_import import purchase_digest

    written = []
    for spec in generated:  # as in the round trip above: notations the parser normalises
        customer = spec["customer"]
        if customer is not None:
            customer = {
                **customer,
                "phone": customer["phone"] and "8 (912) " + customer["phone"],
                "email": customer["email"] and customer["email"] + "@example.ru",
            }
        written.append({**spec, "customer": customer})
    items = parse_all(pos_xml_bytes("A-017", written))
    assert not [item for item in items if isinstance(item, PosRejection)]
    for item in items:
        parts = [
            item.purchase_id,
            item.purchased_at.isoformat(),
            item.type_code,
            item.status,
            item.order_ref,
            item.discount,
            item.bonus_spent,
            item.total,
        ]
        if item.customer is not None:
            c = item.customer
            parts += [c.card, c.phone, c.email, c.last_name, c.first_name, c.birth_date]
        parts += [(line.sku, line.name, line.qty, line.price) for line in item.lines]
        expected = hashlib.md5(repr(parts).encode(), usedforsecurity=False).hexdigest()
        assert purchase_digest(item) == expected


# --- Memory -------------------------------------------------------------------------------------


def test_each_purchase_element_is_freed_once_parsed(tmp_path):
    path = tmp_path / "many.xml"
    write_pos_file(path, "A-017", (purchase(id=str(n)) for n in range(3000)))
    widths = []
    with open(path, "rb") as file:
        pos_stream = stream._PurchaseStream(file)
        for element in pos_stream.elements():
            widths.append(len(element.getparent()))
            assert len(element) == 2  # still whole while the consumer has it

    assert len(widths) == 3000
    # The purchases lxml parsed from the same 32 KB read wait their turn; nothing older stays.
    per_read = 32768 // (path.stat().st_size // 3000)
    assert max(widths) <= per_read + 2


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("POS_XML_MEMORY"), reason="set POS_XML_MEMORY=1 (~20 s)")
def test_a_200k_purchase_file_parses_in_bounded_memory(tmp_path):
    path = tmp_path / "big.xml"
    write_pos_file(
        path,
        "A-017",
        (
            purchase(id=str(n), customer={"card": f"{n:013d}"}, lines=[NUROFEN, MASK])
            for n in range(200_000)
        ),
    )
    script = (
        "import django, resource; django.setup()\n"
        "from customers.pos_xml import iter_pos_purchases\n"
        f"n = sum(1 for _ in iter_pos_purchases({str(path)!r}))\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pharmacrm.test_settings"}
    output = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert int(output[0]) == 200_000
    assert path.stat().st_size > 60_000_000
    assert int(output[1]) < 150_000  # KB
