import io
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from openpyxl import Workbook

from customers import product_import
from customers.models import Product
from customers.product_import import RowMessage, products_import
from customers.services import product_get_or_create_from_line
from customers.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

RUSSIAN_CSV = (
    "\ufeffАртикул;Наименование;МНН;Фасовка;Рецептурный;Группа\n"
    "4601234567890;Нурофен, таблетки 200 мг;Ибупрофен;20;нет;Обезболивающие\n"
    "4601234567891;Амоксициллин, капсулы 500 мг;Амоксициллин;16;да;Антибиотики\n"
)
ENGLISH_CSV = (
    "SKU,Name,INN,Pack size,Prescription only,Category\n"
    '4601234567890,"Nurofen, tablets 200 mg",Ibuprofen,20,no,Painkillers\n'
    "4601234567891,Amoxicillin capsules 500 mg,Amoxicillin,16,yes,Antibiotics\n"
)


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def _products():
    return list(
        Product.objects.order_by("sku").values_list(
            "sku", "name", "inn", "pack_size", "prescription_only", "category", "needs_review"
        )
    )


def test_a_semicolon_csv_with_russian_headers_and_a_bom_is_imported(tmp_path):
    report = products_import(file=_write(tmp_path, "каталог.csv", RUSSIAN_CSV))

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.rejected == []
    assert report.warnings == []
    assert report.unknown_columns == []
    assert report.file_name == "каталог.csv"
    assert _products() == [
        (
            "4601234567890",
            "Нурофен, таблетки 200 мг",
            "Ибупрофен",
            20,
            False,
            "Обезболивающие",
            False,
        ),
        (
            "4601234567891",
            "Амоксициллин, капсулы 500 мг",
            "Амоксициллин",
            16,
            True,
            "Антибиотики",
            False,
        ),
    ]


def test_a_comma_csv_with_english_headers_is_imported(tmp_path):
    report = products_import(file=_write(tmp_path, "catalogue.CSV", ENGLISH_CSV))

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.rejected == []
    assert _products() == [
        ("4601234567890", "Nurofen, tablets 200 mg", "Ibuprofen", 20, False, "Painkillers", False),
        (
            "4601234567891",
            "Amoxicillin capsules 500 mg",
            "Amoxicillin",
            16,
            True,
            "Antibiotics",
            False,
        ),
    ]


def test_a_tab_separated_file_with_aliases_in_any_case_is_imported(tmp_path):
    text = (
        "ШТРИХ-КОД\t  название \tМНН\tКоличество  в упаковке\tRX\tкатегория\n"
        "4601234567890\tНурофен\tИбупрофен\t20\t+\tОбезболивающие\n"
    )
    report = products_import(file=_write(tmp_path, "c.csv", text))

    assert report.created == 1
    assert report.unknown_columns == []
    assert _products() == [
        ("4601234567890", "Нурофен", "Ибупрофен", 20, True, "Обезболивающие", False)
    ]


def test_an_xlsx_first_sheet_is_imported_with_excel_numbers_made_text(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Штрихкод", "Наименование", "Фасовка", "По рецепту", "Цена"])
    # Excel keeps barcodes and pack sizes as numbers, sometimes as floats.
    sheet.append([4601234567890, "Нурофен", 20.0, "Да", 150.5])
    sheet.append([4601234567891.0, "Амоксициллин", 16, True, 200])
    sheet.append([None, None, None, None, None])  # a formatted, empty trailing row
    workbook.create_sheet("Ignored").append(["sku", "name"])
    path = tmp_path / "catalogue.xlsx"
    workbook.save(path)

    report = products_import(file=path)

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.rejected == []
    assert report.unknown_columns == ["Цена"]
    assert _products() == [
        ("4601234567890", "Нурофен", "", 20, True, "", False),
        ("4601234567891", "Амоксициллин", "", 16, True, "", False),
    ]


def test_an_uploaded_file_object_is_read_by_its_name(tmp_path):
    upload = io.BytesIO(ENGLISH_CSV.encode())

    report = products_import(file=upload, file_name="upload.csv")

    assert report.created == 2
    assert report.file_name == "upload.csv"


def test_unknown_columns_are_reported_and_ignored(tmp_path):
    text = "sku;name;Цена;Производитель\n4601234567890;Нурофен;150;Reckitt\n"

    report = products_import(file=_write(tmp_path, "c.csv", text))

    assert report.unknown_columns == ["Цена", "Производитель"]
    assert report.created == 1
    assert _products() == [("4601234567890", "Нурофен", "", None, False, "", False)]


def test_bad_rows_are_reported_by_row_and_column_while_good_rows_are_kept(tmp_path):
    long_sku = "4" * 65
    text = (
        "Артикул;Наименование;Фасовка;Рецептурный\n"
        "4601234567890;Нурофен;20;нет\n"  # row 2: good
        ";Без артикула;10;нет\n"  # row 3
        "4601234567891;;10;нет\n"  # row 4
        "4601234567892;Аспирин;0;нет\n"  # row 5
        "4601234567893;Аспирин;2,5;нет\n"  # row 6
        "4601234567894;Аспирин;десять;нет\n"  # row 7
        "4601234567895;Аспирин;10;может быть\n"  # row 8
        f"{long_sku};Аспирин;10;нет\n"  # row 9
        "4,60123E+12;Аспирин;10;нет\n"  # row 10
        ";;;\n"  # row 11: blank, skipped silently
        "4601234567896;Но-шпа;24;-\n"  # row 12: good
    )

    report = products_import(file=_write(tmp_path, "c.csv", text))

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.rejected == [
        RowMessage(3, "", "Column “Артикул”: the SKU is empty.", "Артикул"),
        RowMessage(4, "4601234567891", "Column “Наименование”: the name is empty.", "Наименование"),
        RowMessage(
            5,
            "4601234567892",
            "Column “Фасовка”: “0” is not a whole number above zero.",
            "Фасовка",
        ),
        RowMessage(
            6,
            "4601234567893",
            "Column “Фасовка”: “2,5” is not a whole number above zero.",
            "Фасовка",
        ),
        RowMessage(
            7,
            "4601234567894",
            "Column “Фасовка”: “десять” is not a whole number above zero.",
            "Фасовка",
        ),
        RowMessage(
            8,
            "4601234567895",
            "Column “Рецептурный”: “может быть” is not yes or no (use yes/no, да/нет, 1/0 or +/-).",
            "Рецептурный",
        ),
        RowMessage(
            9, long_sku, "Column “Артикул”: the SKU is longer than 64 characters.", "Артикул"
        ),
        RowMessage(
            10,
            "4,60123E+12",
            "Column “Артикул”: “4,60123E+12” is a number Excel rewrote in scientific notation; "
            "the digits are lost.",
            "Артикул",
        ),
    ]
    assert [p[0] for p in _products()] == ["4601234567890", "4601234567896"]


def test_a_later_row_with_the_same_sku_wins_with_a_warning(tmp_path):
    text = (
        "sku,name,pack_size\n"
        "4601234567890,Нурофен,10\n"
        "4601234567891,Аспирин,20\n"
        "4601234567890,Нурофен Экспресс,20\n"
    )

    report = products_import(file=_write(tmp_path, "c.csv", text))

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.warnings == [
        RowMessage(4, "4601234567890", "The SKU is also in row 2; this later row is used.", "sku")
    ]
    assert _products()[0] == ("4601234567890", "Нурофен Экспресс", "", 20, False, "", False)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("Наименование;Цена", "SKU"),
        ("Артикул;Цена", "name"),
        ("Код;Товар", "SKU, name"),
    ],
)
def test_a_file_without_the_sku_or_name_column_is_refused_whole(tmp_path, header, missing):
    text = header + "\n4601234567890;Нурофен\n"

    with pytest.raises(ValidationError) as exc:
        products_import(file=_write(tmp_path, "c.csv", text))

    assert exc.value.code == "missing_columns"
    found = ", ".join(f"“{title}”" for title in header.split(";"))
    assert exc.value.messages == [
        f"“c.csv” has no column for {missing} (columns found: {found}). "
        "Expected headers such as “sku” or “артикул” and “name” or “наименование”."
    ]
    assert Product.objects.count() == 0


def test_two_columns_giving_the_same_field_refuse_the_file(tmp_path):
    text = "Артикул;Штрихкод;Наименование\n123;4601234567890;Нурофен\n"

    with pytest.raises(ValidationError) as exc:
        products_import(file=_write(tmp_path, "c.csv", text))

    assert exc.value.messages == ["“c.csv”: columns “Артикул” and “Штрихкод” both give the SKU."]
    assert Product.objects.count() == 0


@pytest.mark.parametrize("name", ["catalogue.xls", "catalogue.txt", "catalogue"])
def test_an_unsupported_file_type_is_refused(tmp_path, name):
    path = _write(tmp_path, name, ENGLISH_CSV)

    with pytest.raises(ValidationError) as exc:
        products_import(file=path)

    assert exc.value.code == "unsupported_type"
    assert exc.value.messages == [f"“{name}”: unsupported file type; upload a .csv or .xlsx file."]
    assert Product.objects.count() == 0


def test_a_csv_that_is_not_utf8_is_refused_with_the_fix(tmp_path):
    path = _write(tmp_path, "c.csv", RUSSIAN_CSV.lstrip("\ufeff"), encoding="cp1251")

    with pytest.raises(ValidationError) as exc:
        products_import(file=path)

    assert exc.value.messages == ["“c.csv” is not UTF-8 text; save it from Excel as “CSV UTF-8”."]
    assert Product.objects.count() == 0


def test_a_file_named_xlsx_that_is_not_a_workbook_is_refused(tmp_path):
    path = _write(tmp_path, "c.xlsx", ENGLISH_CSV)

    with pytest.raises(ValidationError) as exc:
        products_import(file=path)

    assert exc.value.messages == ["“c.xlsx” is not a readable Excel (.xlsx) file."]
    assert Product.objects.count() == 0


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(ValidationError) as exc:
        products_import(file=_write(tmp_path, "c.csv", "\n\n"))

    assert exc.value.messages == ["“c.csv” is empty: no header row found."]


def test_importing_the_same_file_again_changes_nothing(tmp_path):
    path = _write(tmp_path, "c.csv", RUSSIAN_CSV)
    products_import(file=path)
    before = list(Product.objects.order_by("sku").values_list("sku", "updated_at"))

    report = products_import(file=path)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert list(Product.objects.order_by("sku").values_list("sku", "updated_at")) == before


def test_a_changed_product_is_updated_and_blank_cells_keep_the_current_value(tmp_path):
    product = ProductFactory(
        sku="4601234567890", name="Нурофен", inn="Ибупрофен", pack_size=10, category="Старое"
    )
    text = "sku;name;inn;pack_size;category\n4601234567890;Нурофен 200 мг;;20;Обезболивающие\n"

    report = products_import(file=_write(tmp_path, "c.csv", text))

    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    assert _products() == [
        ("4601234567890", "Нурофен 200 мг", "Ибупрофен", 20, False, "Обезболивающие", False)
    ]
    stored = Product.objects.get()
    assert (stored.pk, stored.created_at) == (product.pk, product.created_at)
    assert stored.updated_at > product.updated_at


def test_a_product_created_from_a_till_line_is_completed_by_the_catalogue(tmp_path):
    ProductFactory(sku="4601234567890", name="НУРОФЕН ТАБ 200МГ N20", inn="", needs_review=True)
    ProductFactory(sku="4601234567891", name="Амоксициллин", inn="", needs_review=True)
    text = (
        "sku;name;inn\n"
        "4601234567890;Нурофен, таблетки 200 мг;Ибупрофен\n"
        "4601234567891;Амоксициллин;\n"
    )

    report = products_import(file=_write(tmp_path, "c.csv", text))

    # The second one's data is already right: only the review flag changes, still an update.
    assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
    assert _products() == [
        ("4601234567890", "Нурофен, таблетки 200 мг", "Ибупрофен", 20, False, "", False),
        ("4601234567891", "Амоксициллин", "", 20, False, "", False),
    ]


def test_a_big_catalogue_is_stored_in_batches_with_a_bounded_number_of_queries(
    tmp_path, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(product_import, "BATCH_SIZE", 10)
    ProductFactory(sku="SKU-00003", name="old")
    rows = "".join(f"SKU-{n:05d};Товар {n}\n" for n in range(35))
    path = _write(tmp_path, "c.csv", "sku;name\n" + rows)

    # Four batches, each: savepoint, SELECT ... FOR UPDATE, INSERT, release; one upsert in all.
    with django_assert_num_queries(4 * 4 + 1):
        report = products_import(file=path)

    assert (report.created, report.updated, report.unchanged) == (34, 1, 0)
    assert Product.objects.count() == 35
    assert Product.objects.get(sku="SKU-00003").name == "Товар 3"


def test_a_batch_that_fails_leaves_earlier_batches_and_no_partial_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(product_import, "BATCH_SIZE", 2)
    path = _write(tmp_path, "c.csv", "sku;name\nA;a\nB;b\nC;c\nD;d\n")
    real_bulk_create = Product.objects.bulk_create
    calls = []

    def bulk_create_then_crash(objs, **kwargs):
        calls.append([o.sku for o in objs])
        result = real_bulk_create(objs, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return result

    monkeypatch.setattr(Product.objects, "bulk_create", bulk_create_then_crash)

    with pytest.raises(RuntimeError):
        products_import(file=path)

    assert calls == [["A", "B"], ["C", "D"]]
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B"]


def _in_another_connection(work) -> None:
    def run():
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_a_batch_colliding_with_a_till_line_is_read_again_and_completes_its_product(
    tmp_path, monkeypatch
):
    path = _write(tmp_path, "c.csv", "sku;name;inn\nA;Аспирин;Ацетилсалициловая кислота\n")
    real_bulk_create = Product.objects.bulk_create
    calls = []

    def a_till_line_gets_there_first(objs, **kwargs):
        calls.append(("upsert" if kwargs.get("update_conflicts") else "insert", objs[0].sku))
        if len(calls) == 1:
            # A POS import commits the SKU between the batch's SELECT and its INSERT.
            _in_another_connection(
                lambda: product_get_or_create_from_line(sku="A", name="АСПИРИН ТАБ")
            )
        return real_bulk_create(objs, **kwargs)

    monkeypatch.setattr(Product.objects, "bulk_create", a_till_line_gets_there_first)

    report = products_import(file=path)

    # The INSERT collided and the batch was rolled back; read again, the product was known
    # and the catalogue completed it.
    assert calls == [("insert", "A"), ("upsert", "A")]
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    assert _products() == [("A", "Аспирин", "Ацетилсалициловая кислота", None, False, "", False)]


def test_the_command_prints_the_report(tmp_path):
    ProductFactory(sku="4601234567890", name="Нурофен, таблетки 200 мг", inn="Ибупрофен")
    text = (
        "Артикул;Наименование;МНН;Цена\n"
        "4601234567890;Нурофен, таблетки 200 мг;Ибупрофен;150\n"
        "4601234567891;Аспирин;;90\n"
        ";Без артикула;;\n"
        "4601234567891;Аспирин Кардио;;95\n"
    )
    out = io.StringIO()

    call_command("import_products", str(_write(tmp_path, "c.csv", text)), stdout=out)

    assert out.getvalue() == (
        "c.csv: 1 created, 0 updated, 1 unchanged, 1 rejected.\n"
        "Unknown columns, ignored: Цена\n"
        "Rejected rows:\n"
        "  row 4: Column “Артикул”: the SKU is empty.\n"
        "Warnings:\n"
        "  row 5 (SKU 4601234567891): The SKU is also in row 3; this later row is used.\n"
    )
    assert Product.objects.get(sku="4601234567891").name == "Аспирин Кардио"


def test_the_command_fails_on_a_refused_file(tmp_path):
    path = _write(tmp_path, "c.csv", "Наименование\nНурофен\n")

    with pytest.raises(CommandError) as exc:
        call_command("import_products", str(path), stdout=io.StringIO())

    assert str(exc.value) == (
        "“c.csv” has no column for SKU (columns found: “Наименование”). "
        "Expected headers such as “sku” or “артикул” and “name” or “наименование”."
    )
    assert Product.objects.count() == 0


def test_the_command_fails_on_a_missing_file(tmp_path):
    with pytest.raises(CommandError) as exc:
        call_command("import_products", str(tmp_path / "nope.csv"), stdout=io.StringIO())

    assert str(exc.value) == f"No such file: {tmp_path / 'nope.csv'}"


def test_the_command_refuses_an_unsupported_extension(tmp_path):
    path = _write(tmp_path, "c.json", "[]")

    with pytest.raises(CommandError) as exc:
        call_command("import_products", str(path), stdout=io.StringIO())

    assert str(exc.value) == "“c.json”: unsupported file type; upload a .csv or .xlsx file."
