"""The Russian catalogue is complete and compiled, and the admin speaks Russian or English."""

import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils import translation
from django.utils.text import capfirst

from customers.tests.factories import CustomerFactory

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"
RUSSIAN_PLURAL_FORMS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)
# n -> index of the Russian plural form it takes, one n per form.
PLURAL_SAMPLES = {1: 0, 21: 0, 2: 1, 34: 1, 5: 2, 11: 2, 0: 2}


# --- A small .po reader (no dependency) -------------------------------------------------------


@dataclass
class Entry:
    line: int
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+"(.*)"$')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], text)


def read_po(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int | None] | None = None

    def append(key: tuple[str, int | None], text: str) -> None:
        name, index = key
        if name == "msgstr":
            entry.msgstr[index] = entry.msgstr.get(index, "") + text
        else:
            setattr(entry, name, (getattr(entry, name) or "") + text)

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry, target = None, None
            continue
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, index, text = match.groups()
            if keyword.startswith("msgstr"):
                target = ("msgstr", int(index) if index is not None else 0)
            else:
                target = (keyword, None)
            append(target, _unquote(text))
        elif line.startswith('"') and line.endswith('"') and target is not None:
            append(target, _unquote(line[1:-1]))
        else:
            raise AssertionError(f"{path.name}:{number}: cannot read {raw!r}")
    return entries


def _header(entries: list[Entry]) -> dict[str, str]:
    header = next(e for e in entries if e.msgid == "" and e.msgctxt is None)
    pairs = (line.split(":", 1) for line in header.msgstr[0].splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _messages(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.msgid and not e.obsolete]


def _where(entry: Entry) -> str:
    return f"django.po:{entry.line} {entry.msgid!r}"


_PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\w*\}")


# --- The catalogue --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def po_entries() -> list[Entry]:
    assert PO_FILE.exists(), "run `make messages` to create the Russian catalogue"
    return read_po(PO_FILE)


def test_the_catalogue_header_is_russian_utf8_with_three_plural_forms(po_entries):
    header = _header(po_entries)
    assert header["Language"] == "ru"
    assert header["Content-Type"] == "text/plain; charset=UTF-8"
    assert header["Plural-Forms"] == RUSSIAN_PLURAL_FORMS


def test_every_message_is_translated_and_none_is_fuzzy(po_entries):
    messages = _messages(po_entries)
    assert len(messages) > 300  # the whole catalogue was read, not a fragment of it
    fuzzy = [_where(e) for e in po_entries if "fuzzy" in e.flags]
    assert fuzzy == []
    untranslated = []
    for entry in messages:
        forms = 3 if entry.msgid_plural is not None else 1
        if sorted(entry.msgstr) != list(range(forms)) or not all(entry.msgstr.values()):
            untranslated.append(_where(entry))
    assert untranslated == []


def test_translations_keep_the_placeholders_of_the_english_text(po_entries):
    wrong = []
    for entry in _messages(po_entries):
        expected = set(_PLACEHOLDER.findall(entry.msgid + (entry.msgid_plural or "")))
        if entry.msgid_plural is None and "python-brace-format" not in entry.flags:
            expected = {p for p in expected if p.startswith("%")}
        for text in entry.msgstr.values():
            found = set(_PLACEHOLDER.findall(text))
            if entry.msgid_plural is None and "python-brace-format" not in entry.flags:
                found = {p for p in found if p.startswith("%")}
            if found != expected:
                wrong.append(f"{_where(entry)}: {sorted(found)} != {sorted(expected)}")
    assert wrong == []


def test_the_committed_mo_file_is_compiled_from_this_po_file(po_entries):
    """Every message of the .po translates, through the .mo, to its msgstr, and the .mo holds
    nothing else: a .po edited (or re-extracted) without compiling fails here."""
    assert MO_FILE.exists(), "run `make messages` to compile the Russian catalogue"
    with MO_FILE.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    assert compiled.info()["language"] == "ru"
    stale = []
    keys = {""}
    for entry in _messages(po_entries):
        msgid = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            keys.add(msgid)
            got = (
                compiled.gettext(entry.msgid)
                if entry.msgctxt is None
                else compiled.pgettext(entry.msgctxt, entry.msgid)
            )
            if got != entry.msgstr[0]:
                stale.append(_where(entry))
            continue
        keys.update((msgid, index) for index in range(3))
        for n, index in PLURAL_SAMPLES.items():
            got = (
                compiled.ngettext(entry.msgid, entry.msgid_plural, n)
                if entry.msgctxt is None
                else compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, n)
            )
            if got != entry.msgstr[index]:
                stale.append(f"{_where(entry)} n={n}")
    assert stale == []
    assert set(compiled._catalog) == keys, "the .mo holds messages the .po no longer has"


# --- The admin in Russian and English -------------------------------------------------------


def _english_admin_names() -> set[str]:
    """What the admin index names in English: every registered model and app, and our sections."""
    names = set()
    with translation.override("en"):
        for model in admin.site._registry:
            names.add(capfirst(str(model._meta.verbose_name_plural)))
            names.add(capfirst(str(model._meta.app_config.verbose_name)))
        names.update(
            {
                "Reference lists",
                "Customer base and marketing",
                str(admin.site.index_title),
            }
        )
    return names


@pytest.mark.django_db
def test_the_admin_index_in_russian_names_everything_in_russian(admin_client):
    response = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="ru"' in page
    for word in ("Клиенты", "Справочники", "Клиентская база и маркетинг", "Аптеки", "Покупки"):
        assert word in page
    english = sorted(name for name in _english_admin_names() if f">{name}<" in page)
    assert english == []


@pytest.mark.django_db
def test_the_admin_index_in_english_says_customers(admin_client):
    response = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert '<html lang="en"' in page
    assert ">Customers<" in page
    assert ">Reference lists<" in page
    assert "Клиенты" not in page


@pytest.mark.django_db
def test_the_customer_list_in_russian(admin_client):
    CustomerFactory()
    response = admin_client.get(
        reverse("admin:customers_customer_changelist"), HTTP_ACCEPT_LANGUAGE="ru"
    )
    page = response.content.decode()
    for word in ("ФИО", "Телефон", "Номер карты лояльности", "Объединить выбранных клиентов"):
        assert word in page


@pytest.mark.django_db
def test_the_admin_header_has_a_language_switch_posting_to_set_language(admin_client):
    page = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    form = re.search(r'<form id="language-switch".*?</form>', page, re.S)
    assert form is not None
    form = form.group(0)
    assert f'action="{reverse("set_language")}"' in form
    assert 'method="post"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert f'name="next" value="{reverse("admin:index")}"' in form
    assert 'value="ru"' in form and 'value="en"' in form
    assert 'aria-label="Язык интерфейса"' in form
    assert re.search(r'value="ru"[^>]*aria-pressed="true"', form)


@pytest.mark.django_db
def test_the_login_page_has_the_language_switch_too(client):
    page = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'id="language-switch"' in page
    assert '<div id="site-name"><a href="/admin/">PharmaCRM</a></div>' in page
    assert "<title>Войти | PharmaCRM</title>" in page


@pytest.mark.django_db
def test_the_language_switch_changes_the_admin_language(admin_client):
    index = reverse("admin:index")
    # A browser asking for Russian gets Russian until the marketer switches.
    assert "Клиенты" in admin_client.get(index, HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    response = admin_client.post(
        reverse("set_language"), {"language": "en", "next": index}, HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert response.status_code == 302
    assert response["Location"] == index
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = admin_client.get(index, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert ">Customers<" in page
    assert "Клиенты" not in page

    admin_client.post(reverse("set_language"), {"language": "ru", "next": index})
    page = admin_client.get(index, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Клиенты" in page
    assert ">Customers<" not in page


def test_russian_messages_with_counts_take_the_right_plural_form():
    from django.utils.translation import ngettext

    singular = "%(count)d suspicion closed as different people."
    plural = "%(count)d suspicions closed as different people."
    with translation.override("ru"):
        said = {n: ngettext(singular, plural, n) % {"count": n} for n in (1, 3, 5, 21, 12)}
    assert said == {
        1: "1 подозрение закрыто как «разные люди».",
        3: "3 подозрения закрыты как «разные люди».",
        5: "5 подозрений закрыто как «разные люди».",
        21: "21 подозрение закрыто как «разные люди».",
        12: "12 подозрений закрыто как «разные люди».",
    }
