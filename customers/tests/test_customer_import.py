import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from openpyxl import Workbook

from customers.customer_import import customers_import, split_full_name
from customers.identity import field_wins
from customers.models import (
    Consent,
    Customer,
    DuplicateSuspicion,
    ExternalId,
    IdentifierAlias,
    ImportRun,
    MergeRecord,
)
from customers.tests.factories import ConsentFactory, CustomerFactory, ExternalIdFactory

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")

APP_CSV = (
    "\ufeffИД;Телефон;E-mail;Номер карты;Фамилия;Имя;Отчество;Дата рождения;Пол;Город;"
    "Согласие SMS;Дата согласия SMS;Согласие email;Дата регистрации\n"
    "a-1;8 (912) 345-67-89;Anna@Example.ru;2900000012345;Иванова;Анна;Сергеевна;17.05.1980;ж;"
    "Москва;да;01.03.2024 10:30;нет;2023-01-10\n"
    "a-2;+7 912 000 00 02;;;Петров;Пётр;;1975-12-31;M;Тверь;0;;;\n"
)
SITE_CSV = (
    "client_id,phone,email,full_name,city,consent_sms\n"
    "S-77,+79123456789,,Иванова Анна Сергеевна,Москва,yes\n"
    "S-78,8-912-000-00-02,petrov@example.ru,,,\n"
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _counts(run):
    return {
        name: getattr(run, name)
        for name in (
            "records",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "warnings",
            "customers_created",
            "customers_matched",
            "customers_merged",
            "suspicions",
        )
    }


def _row_counts():
    return (
        Customer.objects.count(),
        ExternalId.objects.count(),
        Consent.objects.count(),
        IdentifierAlias.objects.count(),
        DuplicateSuspicion.objects.count(),
        MergeRecord.objects.count(),
    )


def _issues(run):
    return list(
        run.issues.order_by("position", "id").values_list("level", "position", "field", "message")
    )


def _counts_of(records=0, created=0, updated=0, unchanged=0, rejected=0, warnings=0, **customers):
    return {
        "records": records,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "rejected": rejected,
        "warnings": warnings,
        "customers_created": customers.get("c_created", 0),
        "customers_matched": customers.get("c_matched", 0),
        "customers_merged": customers.get("c_merged", 0),
        "suspicions": customers.get("suspicions", 0),
    }


def test_a_semicolon_csv_with_russian_headers_creates_customers_with_their_app_ids(tmp_path):
    run = customers_import(file=_write(tmp_path, "app.csv", APP_CSV), source="app")

    assert run.status == ImportRun.Status.DONE
    assert (run.kind, run.source, run.file_name) == ("customers", "app", "app.csv")
    assert len(run.checksum) == 64
    assert _counts(run) == _counts_of(records=2, created=2, c_created=2)
    assert _issues(run) == []
    anna = Customer.objects.get(phone="+79123456789")
    assert (anna.email, anna.card_number) == ("anna@example.ru", "2900000012345")
    assert (anna.last_name, anna.first_name, anna.middle_name) == ("Иванова", "Анна", "Сергеевна")
    assert (anna.birth_date, anna.sex, anna.city) == (dt.date(1980, 5, 17), "F", "Москва")
    assert anna.source == "app"
    assert anna.field_sources["first_name"] == ["app", run.started_at.isoformat()]
    petr = Customer.objects.get(phone="+79120000002")
    assert (petr.last_name, petr.first_name, petr.birth_date, petr.sex, petr.city) == (
        "Петров",
        "Пётр",
        dt.date(1975, 12, 31),
        "M",
        "Тверь",
    )
    assert set(ExternalId.objects.values_list("system", "external_id", "customer_id")) == {
        ("app", "a-1", anna.pk),
        ("app", "a-2", petr.pk),
    }


def test_consents_are_recorded_with_their_dates_the_registration_date_or_the_import_time(
    tmp_path,
):
    text = APP_CSV + "a-3;+79120000003;;;;;;;;;да;;;\n"
    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    rows = list(
        Consent.objects.order_by("customer__phone", "channel").values_list(
            "customer__phone", "channel", "granted", "source", "occurred_at", "note"
        )
    )
    note = "Import of app.csv"
    assert rows == [
        ("+79120000002", "sms", False, "app", run.started_at, note),  # no dates in the row
        ("+79120000003", "sms", True, "app", run.started_at, note),
        ("+79123456789", "email", False, "app", dt.datetime(2023, 1, 10, tzinfo=MSK), note),
        ("+79123456789", "sms", True, "app", dt.datetime(2024, 3, 1, 10, 30, tzinfo=MSK), note),
    ]


def test_an_xlsx_export_with_excel_dates_and_numbers_is_imported(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["user_id", "Mobile", "Card", "ФИО", "Birthday", "Household size", "Адрес", "X"])
    sheet.append(
        [1001, 79123456789, 2900000012345, "Иванова Анна", dt.datetime(1980, 5, 17), 3.0, "Ленина"]
    )
    sheet.append([1002.0, "8 912 000-00-02", None, "Пётр", dt.date(1990, 1, 2), 1, None])
    sheet.append([None] * 8)
    workbook.create_sheet("Other").append(["phone"])
    path = tmp_path / "site.xlsx"
    workbook.save(path)

    run = customers_import(file=path, source="site")

    assert _counts(run) == _counts_of(records=2, created=2, warnings=1, c_created=2)
    assert _issues(run) == [("warning", 1, "X", "Unknown column “X”: ignored.")]
    assert list(
        Customer.objects.order_by("phone").values_list(
            "phone",
            "card_number",
            "last_name",
            "first_name",
            "birth_date",
            "household_size",
            "street",
            "source",
        )
    ) == [
        ("+79120000002", None, "", "Пётр", dt.date(1990, 1, 2), 1, "", "site"),
        (
            "+79123456789",
            "2900000012345",
            "Иванова",
            "Анна",
            dt.date(1980, 5, 17),
            3,
            "Ленина",
            "site",
        ),
    ]
    assert sorted(ExternalId.objects.values_list("system", "external_id")) == [
        ("site", "1001"),
        ("site", "1002"),
    ]


def test_a_full_name_is_split_and_separate_name_columns_take_precedence():
    assert split_full_name("Иванова Анна Сергеевна") == {
        "last_name": "Иванова",
        "first_name": "Анна",
        "middle_name": "Сергеевна",
    }
    assert split_full_name("Мамедов Рашид Гасан оглы")["middle_name"] == "Гасан оглы"
    assert split_full_name("Иванова  Анна") == {"last_name": "Иванова", "first_name": "Анна"}
    assert split_full_name("Анна") == {"first_name": "Анна"}


def test_a_full_name_column_fills_only_the_parts_without_a_column_of_their_own(tmp_path):
    text = "phone,ФИО,Фамилия\n+79123456789,Иванова Анна Сергеевна,Смирнова\n"

    run = customers_import(file=_write(tmp_path, "c.csv", text), source="app")

    assert run.created == 1
    customer = Customer.objects.get()
    assert (customer.last_name, customer.first_name, customer.middle_name) == (
        "Смирнова",
        "Анна",
        "Сергеевна",
    )


def test_a_mapping_file_overrides_the_default_columns(tmp_path):
    text = (
        "Моб;Телефон;Клиент;Код;Город проживания\n+79123456789;84951234567;Иванова Анна;77;Тула\n"
    )
    path = _write(tmp_path, "c.csv", text)
    mapping = _write(
        tmp_path,
        "mapping.json",
        json.dumps(
            {"Моб": "phone", "Клиент": "full_name", "Код": "external_id", "Город проживания": None}
        ),
    )
    out = io.StringIO()

    call_command(
        "import_customers", str(path), "--source", "app", "--mapping", str(mapping), stdout=out
    )

    customer = Customer.objects.get()
    assert (customer.phone, customer.last_name, customer.first_name, customer.city) == (
        "+79123456789",
        "Иванова",
        "Анна",
        "",
    )
    assert list(ExternalId.objects.values_list("system", "external_id")) == [("app", "77")]
    run = ImportRun.objects.get()
    # "Телефон" would be the phone by default: the mapping gave the phone to "Моб".
    assert _issues(run) == [("warning", 1, "Телефон", "Unknown column “Телефон”: ignored.")]


def test_a_mapping_naming_an_unknown_field_refuses_the_file(tmp_path):
    path = _write(tmp_path, "c.csv", "Моб\n+79123456789\n")

    run = customers_import(file=path, source="app", mapping={"Моб": "mobile_phone"})

    assert run.status == ImportRun.Status.FAILED
    assert run.error.startswith(
        "The mapping names unknown fields: “mobile_phone” (for column “Моб”). Fields are: phone, "
    )
    assert _row_counts() == (0, 0, 0, 0, 0, 0)
    assert run.issues.count() == 0


def test_dates_are_read_in_iso_and_russian_notation_and_bad_ones_reject_the_row(tmp_path):
    text = (
        "phone,birth_date,consent_sms,consent_sms_date\n"
        "+79120000001,1980-05-17,yes,2024-03-01T10:30:00+00:00\n"
        "+79120000002,17.05.1980,1,01.03.2024\n"
        "+79120000003,31.02.1980,,\n"
        "+79120000004,17/05/1980,,\n"
        "+79120000005,,да,2999-01-01\n"
    )

    run = customers_import(file=_write(tmp_path, "c.csv", text), source="app")

    assert (run.created, run.rejected) == (2, 3)
    assert list(Customer.objects.order_by("phone").values_list("phone", "birth_date")) == [
        ("+79120000001", dt.date(1980, 5, 17)),
        ("+79120000002", dt.date(1980, 5, 17)),
    ]
    assert list(Consent.objects.order_by("occurred_at").values_list("occurred_at", flat=True)) == [
        dt.datetime(2024, 3, 1, tzinfo=MSK),
        dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.UTC),
    ]
    assert _issues(run) == [
        ("error", 4, "birth_date", "“31.02.1980” is not a date (use 2024-03-01 or 01.03.2024)."),
        ("error", 5, "birth_date", "“17/05/1980” is not a date (use 2024-03-01 or 01.03.2024)."),
        ("error", 6, "consent_sms_date", "2999-01-01T00:00:00+03:00 is in the future."),
    ]


def test_bad_rows_are_rejected_by_row_and_column_and_create_nothing(tmp_path):
    text = (
        "id;phone;email;card;last_name;sex;household_size;consent_viber\n"
        "1;+79120000001;;;Иванова;ж;2;да\n"  # row 2: good
        "2;12345;;;Петрова;;;да\n"  # row 3
        "3;;not-an-email;;;;;\n"  # row 4
        "4;;;123;;;;\n"  # row 5
        "5;+79120000005;;;;x;;\n"  # row 6
        "6;+79120000006;;;;;0;\n"  # row 7
        "7;+79120000007;;;;;2.5;\n"  # row 8
        f"8;+79120000008;;;{'Я' * 101};;;\n"  # row 9
        "9;+79120000009;;;;;;может быть\n"  # row 10
        ";;;;Безымянная;ж;;\n"  # row 11
        ";;;;;;;\n"  # row 12: blank, skipped
        "10;bad;bad;;;;-1;\n"  # row 13: three problems
    )

    run = customers_import(file=_write(tmp_path, "c.csv", text), source="site")

    assert _counts(run) == _counts_of(records=11, created=1, rejected=10, c_created=1)
    assert list(Customer.objects.values_list("phone", flat=True)) == ["+79120000001"]
    assert list(ExternalId.objects.values_list("external_id", flat=True)) == ["1"]
    assert list(Consent.objects.values_list("channel", flat=True)) == ["viber"]
    errors = list(
        run.issues.order_by("position", "id").values_list("position", "record_id", "field")
    )
    assert errors == [
        (3, "2", "phone"),
        (4, "3", "email"),
        (5, "4", "card"),
        (6, "5", "sex"),
        (7, "6", "household_size"),
        (8, "7", "household_size"),
        (9, "8", "last_name"),
        (10, "9", "consent_viber"),
        (11, "", ""),
        (13, "10", "phone"),
        (13, "10", "email"),
        (13, "10", "household_size"),
    ]
    messages = dict(run.issues.values_list("position", "message"))
    assert messages[3] == "“12345” is not a valid phone number."
    assert messages[5] == "A loyalty card number has 13 digits; got “123”."
    assert messages[6] == "“x” is not a sex (use м/ж, M/F or male/female)."
    assert messages[9] == "at most 100 characters"
    assert messages[11] == "No phone, email, card number or id: nothing to find the customer by."


def test_a_file_without_an_identifier_column_is_refused_and_creates_nothing(tmp_path):
    path = _write(tmp_path, "c.csv", "Фамилия;Имя;Город\nИванова;Анна;Москва\n")

    run = customers_import(file=path, source="app")

    assert run.status == ImportRun.Status.FAILED
    assert run.error == (
        "“c.csv” has no column to find customers by: it needs a phone, email, card number or id "
        "column, e.g. “телефон”, “email”, “номер карты”, “id” (columns found: “Фамилия”, “Имя”, "
        "“Город”)."
    )
    assert (run.records, run.created) == (0, 0)
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("c.txt", b"phone\n", "“c.txt”: unsupported file type; upload a .csv or .xlsx file."),
        ("c.csv", "phone\n+79120000001\nИванова\n".encode("cp1251"), "“c.csv” is not UTF-8 text"),
        ("c.xlsx", b"not a zip", "“c.xlsx” is not a readable Excel (.xlsx) file."),
        ("c.csv", b"\n\n", "“c.csv” is empty: no header row found."),
        ("c.csv", b"phone;mobile\n1;2\n", "“c.csv”: columns “phone” and “mobile” both give"),
    ],
)
def test_an_unreadable_file_is_refused_whole(name, content, error):
    run = customers_import(file=io.BytesIO(content), file_name=name, source="app")

    assert run.status == ImportRun.Status.FAILED
    assert run.error.startswith(error)
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


def test_the_app_and_site_exports_of_the_same_people_give_one_customer_each(tmp_path):
    customers_import(file=_write(tmp_path, "app.csv", APP_CSV), source="app")

    run = customers_import(file=_write(tmp_path, "site.csv", SITE_CSV), source="site")

    assert _counts(run) == _counts_of(records=2, updated=2, c_matched=2)
    assert Customer.objects.count() == 2
    anna = Customer.objects.get(phone="+79123456789")
    petr = Customer.objects.get(phone="+79120000002")
    assert petr.email == "petrov@example.ru"
    assert sorted(anna.external_ids.values_list("system", "external_id")) == [
        ("app", "a-1"),
        ("site", "S-77"),
    ]
    assert sorted(petr.external_ids.values_list("system", "external_id")) == [
        ("app", "a-2"),
        ("site", "S-78"),
    ]
    # Анна's SMS consent already says yes: no second row.
    assert anna.consents.filter(channel="sms").count() == 1


def test_site_data_after_app_data_wins_as_the_more_recent_of_equally_trusted_sources(tmp_path):
    customers_import(
        file=_write(tmp_path, "app.csv", "id,phone,city\n1,+79120000001,Тула\n"), source="app"
    )
    app_source = Customer.objects.get().field_sources["city"]

    run = customers_import(
        file=_write(tmp_path, "site.csv", "id,phone,city\nS1,+79120000001,Тверь\n"), source="site"
    )

    at = run.started_at.isoformat()
    assert field_wins(
        current_value="Тула",
        current_source=app_source,
        new_value="Тверь",
        new_source="site",
        new_at=at,
    )
    customer = Customer.objects.get()
    assert customer.city == "Тверь"
    assert customer.field_sources["city"] == ["site", at]
    assert (run.updated, run.unchanged) == (1, 0)


def test_a_pos_export_does_not_overwrite_app_data_but_fills_what_is_missing(tmp_path):
    customers_import(
        file=_write(tmp_path, "app.csv", "id,phone,first_name\n1,+79120000001,Анна\n"), source="app"
    )
    text = "id,phone,first_name,city,birth_date,sex,household_size\n"
    text += "P1,+79120000001,Аня,Тула,1980-05-17,ж,3\n"

    run = customers_import(file=_write(tmp_path, "pos.csv", text), source="pos")

    customer = Customer.objects.get()
    assert (customer.first_name, customer.city) == ("Анна", "Тула")
    assert (customer.birth_date, customer.sex, customer.household_size) == (
        dt.date(1980, 5, 17),
        "F",
        3,
    )
    assert customer.field_sources["first_name"][0] == "app"
    assert customer.field_sources["city"][0] == "pos"
    assert sorted(customer.external_ids.values_list("system", "external_id")) == [
        ("app", "1"),
        ("pos", "P1"),
    ]
    assert _counts(run) == _counts_of(records=1, updated=1, c_matched=1)


def test_importing_the_same_file_again_changes_nothing(tmp_path):
    path = _write(tmp_path, "app.csv", APP_CSV)
    customers_import(file=path, source="app")
    before = _row_counts()
    stamps = list(Customer.objects.order_by("pk").values_list("updated_at", "field_sources"))

    run = customers_import(file=path, source="app")

    assert _counts(run) == _counts_of(records=2, unchanged=2, c_matched=2)
    assert _row_counts() == before
    assert (
        list(Customer.objects.order_by("pk").values_list("updated_at", "field_sources")) == stamps
    )
    assert _issues(run) == []


def test_a_row_naming_two_customers_of_one_person_merges_them(tmp_path):
    CustomerFactory(phone="+79120000001", email=None, card_number=None, first_name="")
    by_email = CustomerFactory(phone=None, email="anna@example.ru", card_number=None)
    ConsentFactory(customer=by_email, channel="sms", granted=True)
    text = "id;phone;email;consent_sms\nA1;+79120000001;anna@example.ru;да\n"

    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    assert _counts(run) == _counts_of(records=1, updated=1, c_merged=1)
    customer = Customer.objects.get()
    assert (customer.phone, customer.email) == ("+79120000001", "anna@example.ru")
    assert list(customer.external_ids.values_list("external_id", flat=True)) == ["A1"]
    assert customer.consents.count() == 1  # B's grant moved over; the file's yes adds nothing
    assert MergeRecord.objects.get().survivor == customer


def test_a_row_naming_two_customers_with_different_names_raises_a_suspicion(tmp_path):
    mother = CustomerFactory(phone="+79120000001", email=None, card_number=None, first_name="Анна")
    daughter = CustomerFactory(
        phone=None, email="masha@example.ru", card_number=None, first_name="Мария"
    )
    text = "phone;email\n+79120000001;masha@example.ru\n"

    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    assert _counts(run) == _counts_of(records=1, unchanged=1, suspicions=1)
    assert Customer.objects.count() == 2
    suspicion = DuplicateSuspicion.objects.get()
    assert (suspicion.customer, suspicion.other) == (mother, daughter)


def test_a_contrary_consent_older_than_the_current_one_is_kept_out_and_reported(tmp_path):
    customer = CustomerFactory(phone="+79120000001")
    ConsentFactory(
        customer=customer,
        channel="sms",
        granted=False,
        source="site",
        occurred_at=dt.datetime(2024, 6, 1, tzinfo=MSK),
    )
    text = "phone;consent_sms;consent_sms_date\n+79120000001;да;01.03.2024\n"

    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    assert customer.consents.count() == 1
    assert (run.unchanged, run.warnings) == (1, 1)
    assert _issues(run) == [
        (
            "warning",
            2,
            "consent_sms",
            "“yes” of 2024-03-01 00:00 is older than the customer's current consent (“no” of "
            "2024-06-01 00:00, from site): kept the current one.",
        )
    ]


def test_a_newer_contrary_consent_is_appended_to_the_history(tmp_path):
    customer = CustomerFactory(phone="+79120000001")
    ConsentFactory(
        customer=customer,
        channel="sms",
        granted=True,
        occurred_at=dt.datetime(2024, 1, 1, tzinfo=MSK),
    )
    text = "phone;consent_sms;consent_sms_date\n+79120000001;нет;01.03.2024\n"

    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    assert (run.updated, run.unchanged) == (1, 0)
    assert list(customer.consents.values_list("granted", "occurred_at")) == [
        (False, dt.datetime(2024, 3, 1, tzinfo=MSK)),
        (True, dt.datetime(2024, 1, 1, tzinfo=MSK)),
    ]


def test_an_external_id_already_known_finds_its_customer(tmp_path):
    known = ExternalIdFactory(system="app", external_id="a-1").customer
    text = "id,email\na-1,new@example.ru\n"

    run = customers_import(file=_write(tmp_path, "app.csv", text), source="app")

    assert (run.customers_matched, run.updated) == (1, 1)
    known.refresh_from_db()
    assert known.email == "new@example.ru"


def test_an_old_phone_left_behind_by_a_merge_still_finds_the_customer(tmp_path):
    customer = CustomerFactory(phone="+79120000001", email=None, card_number=None)
    IdentifierAlias.objects.create(kind="phone", value="+79129999999", customer=customer)

    run = customers_import(
        file=_write(tmp_path, "app.csv", "phone;id\n8 912 999-99-99;A1\n"), source="app"
    )

    assert (run.customers_created, run.customers_matched) == (0, 1)
    assert list(customer.external_ids.values_list("external_id", flat=True)) == ["A1"]


def test_an_email_stored_in_another_case_is_the_same_email(tmp_path):
    customer = CustomerFactory(phone=None, email="Anna@Example.RU", card_number=None)

    run = customers_import(
        file=_write(tmp_path, "app.csv", "email;id\nanna@example.ru;A1\n"), source="app"
    )

    assert (run.customers_created, run.customers_matched) == (0, 1)
    assert Customer.objects.get() == customer


def test_a_new_phone_from_the_app_replaces_the_tills_and_the_old_one_still_finds_them(tmp_path):
    customer = CustomerFactory(phone="+79120000001", email=None, card_number=None)
    ExternalIdFactory(customer=customer, system="app", external_id="A1")

    run = customers_import(
        file=_write(tmp_path, "app.csv", "id;phone\nA1;+79120000002\n"), source="app"
    )

    customer.refresh_from_db()
    assert customer.phone == "+79120000002"
    assert list(IdentifierAlias.objects.values_list("kind", "value", "customer")) == [
        ("phone", "+79120000001", customer.pk)
    ]
    assert (run.updated, run.customers_matched) == (1, 1)


def test_rows_are_written_in_batches_with_a_bounded_number_of_queries(
    tmp_path, django_assert_max_num_queries
):
    lines = ["id,phone,first_name,consent_sms"]
    lines += [f"{n},+7912{n:07d},Имя{n},да" for n in range(1, 41)]
    path = _write(tmp_path, "app.csv", "\n".join(lines) + "\n")

    with django_assert_max_num_queries(80):
        run = customers_import(file=path, source="app", batch_size=10)

    assert (run.records, run.created, run.customers_created) == (40, 40, 40)
    assert Consent.objects.count() == 40
    with django_assert_max_num_queries(60):
        again = customers_import(file=path, source="app", batch_size=10)
    assert (again.unchanged, again.customers_matched) == (40, 40)
    assert Consent.objects.count() == 40


@pytest.mark.parametrize("batch_size", [1, 10])
def test_the_same_new_person_twice_in_one_file_is_one_customer(tmp_path, batch_size):
    text = "id;phone;email\n1;+79120000001;\n2;+79120000001;anna@example.ru\n"

    run = customers_import(
        file=_write(tmp_path, "app.csv", text), source="app", batch_size=batch_size
    )

    assert (run.created, run.updated, run.customers_created, run.customers_matched) == (1, 1, 1, 1)
    customer = Customer.objects.get()
    assert customer.email == "anna@example.ru"
    assert sorted(customer.external_ids.values_list("external_id", flat=True)) == ["1", "2"]


def test_the_command_prints_the_summary(tmp_path):
    text = APP_CSV + "a-3;12345;;;;;;;;;;;;\n"
    path = _write(tmp_path, "app.csv", text)
    out = io.StringIO()

    call_command("import_customers", str(path), "--source", "app", stdout=out)

    assert out.getvalue().splitlines() == [
        "app.csv: Done",
        "rows: 3 read, 2 created a customer, 0 updated one, 0 changed nothing, 1 rejected; "
        "customers: 2 created, 0 matched, 0 merged, 0 duplicate suspicions; 0 warnings",
        "  Rejected row 4 (a-3) [Телефон]: “12345” is not a valid phone number.",
    ]


def test_the_command_fails_on_a_refused_file_and_on_a_bad_mapping(tmp_path):
    path = _write(tmp_path, "c.csv", "Фамилия\nИванова\n")
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"c\.csv refused"):
        call_command("import_customers", str(path), "--source", "site", stdout=out)
    assert out.getvalue().startswith("c.csv: Refused\nRefused: “c.csv” has no column")

    mapping = _write(tmp_path, "m.json", "{not json")
    with pytest.raises(CommandError, match="Cannot read the mapping"):
        call_command("import_customers", str(path), "--source", "site", "--mapping", str(mapping))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_customers", str(tmp_path / "none.csv"), "--source", "site")
    assert _row_counts() == (0, 0, 0, 0, 0, 0)
    assert ImportRun.objects.count() == 1


def test_the_import_time_is_the_default_consent_time(tmp_path):
    before = timezone.now()
    run = customers_import(
        file=_write(tmp_path, "c.csv", "phone,consent_calls\n+79120000001,false\n"), source="app"
    )

    consent = Consent.objects.get()
    assert (consent.channel, consent.granted, consent.occurred_at) == (
        "calls",
        False,
        run.started_at,
    )
    assert consent.occurred_at >= before


def test_a_bad_registration_date_rejects_the_row_even_without_consent_columns(tmp_path):
    text = "phone;Дата регистрации\n+79120000001;вчера\n+79120000002;2024-02-30\n"

    run = customers_import(file=_write(tmp_path, "c.csv", text), source="app")

    assert (run.records, run.created, run.rejected) == (2, 0, 2)
    assert list(run.issues.values_list("position", "field")) == [
        (2, "Дата регистрации"),
        (3, "Дата регистрации"),
    ]
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


def test_text_with_backslashes_tabs_and_quotes_is_stored_as_written(tmp_path):
    text = 'phone,last_name,street\n+79120000001,"Д\'Арк \\ Жанна","ул.\tЛенина"\n'

    customers_import(file=_write(tmp_path, "c.csv", text), source="app")

    customer = Customer.objects.get()
    assert (customer.last_name, customer.street) == ("Д'Арк \\ Жанна", "ул.\tЛенина")
