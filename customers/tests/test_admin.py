import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from campaigns.models import MarketingEventType
from customers.models import (
    Consent,
    Customer,
    FamilyMember,
    IdentifierAlias,
    IdentifierKind,
    Purchase,
    PurchaseType,
    Source,
)
from customers.services import EDITABLE_FIELDS
from customers.tests.factories import (
    ConsentFactory,
    CustomerFactory,
    ExternalIdFactory,
    FamilyMemberFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
    ReservationFactory,
    StoreFactory,
)
from customers.timeline import TimelineEvent
from loyalty.models import BonusDiscountType

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:customers_customer_changelist"
ADD = "admin:customers_customer_add"


def change_url(customer: Customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def listed(client, **params) -> set[int]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {customer.pk for customer in response.context["cl"].result_list}


def form_data(client, url: str, **fields) -> dict[str, str]:
    """What the page's form would post back untouched, with `fields` changed."""
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["adminform"].form
    data = {
        name: "" if form.initial.get(name) is None else form.initial[name] for name in form.fields
    }
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(len(formset.initial_forms))
        data[f"{formset.prefix}-INITIAL_FORMS"] = str(len(formset.initial_forms))
        for row in formset.initial_forms:
            data[f"{row.prefix}-id"] = str(row.instance.pk)
            data[f"{row.prefix}-customer"] = str(row.instance.customer_id)
    data.update(fields)
    return data


def add_row(data: dict[str, str], prefix: str, **fields) -> None:
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    data.update({f"{prefix}-{index}-{name}": value for name, value in fields.items()})


def errors(response) -> dict[str, list[str]]:
    return {
        name: list(messages) for name, messages in response.context["adminform"].form.errors.items()
    }


# --- search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term", ["8 (912) 345-67-89", "+7 (912) 345 67 89", "89123456789", "+7 912 345 67 89"]
)
def test_a_phone_typed_in_any_notation_finds_the_customer(admin_client, term):
    anna = CustomerFactory(phone="+79123456789")
    CustomerFactory(phone="+79123456780")

    assert listed(admin_client, q=term) == {anna.pk}


def test_a_phone_search_is_an_exact_lookup_not_a_like(admin_client):
    CustomerFactory(phone="+79123456789")

    with CaptureQueriesContext(connection) as queries:
        listed(admin_client, q="8 (912) 345-67-89")

    on_customers = [q["sql"] for q in queries if 'FROM "customers_customer"' in q["sql"]]
    assert on_customers
    assert not [sql for sql in on_customers if "LIKE" in sql.upper()]


def test_a_card_number_with_spaces_finds_the_customer(admin_client):
    anna = CustomerFactory(card_number="2900000012345")
    CustomerFactory(card_number="2900000012346")

    assert listed(admin_client, q="2900 0000 1234 5") == {anna.pk}
    assert listed(admin_client, q="2900-0000-1234-5") == {anna.pk}


def test_an_email_in_another_case_finds_the_customer(admin_client):
    anna = CustomerFactory(email="anna.ivanova@example.ru")
    CustomerFactory(email="anna@example.ru")

    assert listed(admin_client, q="  Anna.Ivanova@EXAMPLE.ru ") == {anna.pk}


def test_a_merged_customers_old_phone_finds_the_survivor(admin_client):
    survivor = CustomerFactory(phone="+79123456789")
    IdentifierAlias.objects.create(
        kind=IdentifierKind.PHONE, value="+79990001122", customer=survivor
    )

    assert listed(admin_client, q="8 999 000-11-22") == {survivor.pk}


def test_a_number_that_is_neither_phone_nor_card_finds_nobody(admin_client):
    CustomerFactory(phone="+79123456789", card_number="2900000012345")

    assert listed(admin_client, q="12345") == set()
    assert listed(admin_client, q="8 (000) 000-00-00") == set()


def test_every_word_of_a_name_search_must_start_a_name_in_any_case(admin_client):
    anna = CustomerFactory(last_name="Иванова", first_name="Анна", middle_name="Сергеевна")
    ivan = CustomerFactory(last_name="Петров", first_name="Иван", middle_name="Андреевич")
    CustomerFactory(last_name="Иванова", first_name="Мария", middle_name="Петровна")
    CustomerFactory(last_name="Смирнова", first_name="Анна", middle_name="Олеговна")

    assert listed(admin_client, q="иван ан") == {anna.pk, ivan.pk}
    assert listed(admin_client, q="ИВАНОВА АННА") == {anna.pk}
    assert listed(admin_client, q="иванова серг") == {anna.pk}
    assert listed(admin_client, q="ванова") == set()


def test_the_autocomplete_for_customers_searches_the_same_way(admin_client):
    anna = CustomerFactory(phone="+79123456789", last_name="Иванова", first_name="Анна")
    CustomerFactory()

    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "customers",
            "model_name": "reservation",
            "field_name": "customer",
            "term": "8 (912) 345-67-89",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(anna.pk), "text": "Иванова Анна Сергеевна"}]


# --- filters ------------------------------------------------------------------------------------


def test_the_city_filter_lists_the_customers_of_that_city(admin_client):
    moscow = CustomerFactory(city="Москва")
    CustomerFactory(city="Казань")
    CustomerFactory(city="Казань")
    CustomerFactory(city="")

    response = admin_client.get(reverse(CHANGELIST))

    city_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "city")
    assert city_filter.lookup_choices == [("Казань", "Казань"), ("Москва", "Москва")]
    assert listed(admin_client, city="Москва") == {moscow.pk}


def test_the_store_filter_lists_customers_with_a_completed_purchase_there(admin_client):
    store, other = StoreFactory(code="A-001"), StoreFactory(code="A-002")
    bought = CustomerFactory()
    PurchaseFactory(customer=bought, store=store)
    PurchaseFactory(customer=bought, store=store)
    elsewhere = CustomerFactory()
    PurchaseFactory(customer=elsewhere, store=other)
    cancelled = CustomerFactory()
    PurchaseFactory(customer=cancelled, store=store, status=Purchase.Status.CANCELLED)

    assert listed(admin_client, bought_in=store.pk) == {bought.pk}
    assert listed(admin_client, bought_in=other.pk) == {elsewhere.pk}


def test_a_malformed_filter_value_is_refused_not_an_error_page(admin_client):
    StoreFactory(code="A-001")

    response = admin_client.get(reverse(CHANGELIST), {"bought_in": "abc"})

    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_the_consent_filter_follows_the_latest_row_per_channel(admin_client):
    t = timezone.now() - dt.timedelta(days=10)
    granted = CustomerFactory()
    ConsentFactory(customer=granted, channel="sms", granted=True, occurred_at=t)
    withdrawn = CustomerFactory()
    ConsentFactory(customer=withdrawn, channel="sms", granted=True, occurred_at=t)
    ConsentFactory(
        customer=withdrawn, channel="sms", granted=False, occurred_at=t + dt.timedelta(1)
    )
    regranted = CustomerFactory()
    ConsentFactory(customer=regranted, channel="sms", granted=False, occurred_at=t)
    ConsentFactory(customer=regranted, channel="sms", granted=True, occurred_at=t + dt.timedelta(1))
    # Two rows at the same moment: the one recorded later decides.
    same_moment = CustomerFactory()
    ConsentFactory(customer=same_moment, channel="sms", granted=True, occurred_at=t)
    ConsentFactory(customer=same_moment, channel="sms", granted=False, occurred_at=t)
    # A recorded-late old grant does not override a newer withdrawal.
    late_old = CustomerFactory()
    ConsentFactory(customer=late_old, channel="sms", granted=False, occurred_at=t)
    ConsentFactory(customer=late_old, channel="sms", granted=True, occurred_at=t - dt.timedelta(1))
    email_only = CustomerFactory()
    ConsentFactory(customer=email_only, channel="email", granted=True, occurred_at=t)
    never = CustomerFactory()

    assert listed(admin_client, consent_sms="granted") == {granted.pk, regranted.pk}
    assert listed(admin_client, consent_sms="not_granted") == {
        withdrawn.pk,
        same_moment.pk,
        late_old.pk,
        email_only.pk,
        never.pk,
    }
    assert listed(admin_client, consent_email="granted") == {email_only.pk}


def test_consent_filters_of_two_channels_combine(admin_client):
    both = CustomerFactory()
    ConsentFactory(customer=both, channel="sms", granted=True)
    ConsentFactory(customer=both, channel="email", granted=True)
    sms_only = CustomerFactory()
    ConsentFactory(customer=sms_only, channel="sms", granted=True)

    assert listed(admin_client, consent_sms="granted", consent_email="granted") == {both.pk}
    assert listed(admin_client, consent_sms="granted", consent_email="not_granted") == {sms_only.pk}


def test_the_family_filter_splits_customers_with_and_without_relatives(admin_client):
    parent = CustomerFactory()
    FamilyMemberFactory(customer=parent)
    FamilyMemberFactory(customer=parent, name="Мария")
    single = CustomerFactory()

    assert listed(admin_client, has_family="yes") == {parent.pk}
    assert listed(admin_client, has_family="no") == {single.pk}


def test_the_source_filter_lists_customers_by_first_channel(admin_client):
    app = CustomerFactory(source=Source.APP)
    CustomerFactory(source=Source.POS)

    assert listed(admin_client, source__exact="app") == {app.pk}


# --- the change page ----------------------------------------------------------------------------


def make_history(customer: Customer, purchases: int) -> None:
    store = StoreFactory(code="A-001", name="Аптека на Ленина")
    products = [
        ProductFactory(name="Нурофен"),
        ProductFactory(name="Маска"),
        ProductFactory(name="Бинт"),
    ]
    start = timezone.now() - dt.timedelta(days=purchases + 1)
    for n in range(purchases):
        purchase = PurchaseFactory(
            customer=customer,
            store=store,
            external_id=f"C{customer.pk}-{n:03d}",
            purchased_at=start + dt.timedelta(days=n),
        )
        for qty, product in enumerate(products, start=1):
            PurchaseLineFactory(purchase=purchase, product=product, qty=Decimal(qty))
    ConsentFactory(customer=customer, channel="sms", granted=True)
    ReservationFactory(customer=customer, store=store, product=products[0])


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_change_page_shows_the_timeline_in_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    small, large = CustomerFactory(), CustomerFactory()
    make_history(small, purchases=1)
    make_history(large, purchases=30)
    admin_client.get(change_url(small))  # warm per-process caches (content types, sessions)

    # The customer's loyalty panels (discount, personal discounts, bonus account) add 6.
    with django_assert_max_num_queries(21):
        response = admin_client.get(change_url(large))

    assert response.status_code == 200
    assert count_queries(admin_client, change_url(small)) == count_queries(
        admin_client, change_url(large)
    )
    timeline = response.context["timeline"]
    assert [event.kind for event in timeline[:2]] == ["reservation", "consent"]
    assert sum(event.kind == "purchase" for event in timeline) == 30
    newest = Purchase.objects.get(customer=large, external_id=f"C{large.pk}-029")
    purchase_event = next(event for event in timeline if event.kind == "purchase")
    assert purchase_event.title == f"Purchase C{large.pk}-029: 289.00 ₽"
    assert purchase_event.url == reverse("admin:customers_purchase_change", args=[newest.pk])
    content = response.content.decode()
    assert f'<a href="{purchase_event.url}">{purchase_event.title}</a>' in content
    assert "Consent to SMS given" in content
    local = date_format(timezone.localtime(purchase_event.at), "SHORT_DATETIME_FORMAT")
    assert local in content
    assert "Нурофен ×1, Маска ×2, Бинт ×3" in content


def test_the_purchases_on_the_change_page_are_the_newest_fifty(admin_client):
    customer = CustomerFactory()
    start = timezone.now() - dt.timedelta(days=100)
    for n in range(55):
        PurchaseFactory(customer=customer, purchased_at=start + dt.timedelta(days=n))

    response = admin_client.get(change_url(customer))

    inline = next(
        i for i in response.context["inline_admin_formsets"] if i.formset.prefix == "purchases"
    )
    shown = [form.instance.purchased_at for form in inline.formset.initial_forms]
    assert len(shown) == 50
    assert shown == sorted(shown, reverse=True)
    assert shown[-1] == start + dt.timedelta(days=5)


def test_the_timeline_shows_events_from_any_registered_provider(admin_client, monkeypatch):
    from customers import timeline

    customer = CustomerFactory()
    at = timezone.now() - dt.timedelta(hours=1)

    def calls(customer, limit):
        yield TimelineEvent(at=at, kind="call", title="Incoming call", detail="2 min")

    monkeypatch.setitem(timeline._providers, "calls", calls)

    response = admin_client.get(change_url(customer))

    content = response.content.decode()
    assert '<tr class="timeline-call">' in content
    assert "<td>Incoming call</td>" in content
    assert "<td>2 min</td>" in content


# --- adding and changing customers --------------------------------------------------------------


def test_adding_a_customer_stores_normalised_identifiers(admin_client):
    data = form_data(
        admin_client,
        reverse(ADD),
        phone="8 912 345-67-89",
        email=" Anna@Example.RU ",
        card_number="2900 0000 1234 5",
        last_name="Иванова",
        first_name="Анна",
    )
    add_row(data, "family_members", name="Пётр", relation="child", birth_date="2015-03-01")
    add_row(data, "consents", channel="sms", granted="1")

    response = admin_client.post(reverse(ADD), data)

    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.phone == "+79123456789"
    assert customer.email == "anna@example.ru"
    assert customer.card_number == "2900000012345"
    assert customer.source == Source.ADMIN
    assert [m.name for m in customer.family_members.all()] == ["Пётр"]
    consent = customer.consents.get()
    assert (consent.channel, consent.granted, consent.source) == ("sms", True, Source.ADMIN)


def test_a_phone_that_cannot_be_real_is_refused_on_its_field(admin_client):
    data = form_data(admin_client, reverse(ADD), phone="+7 (000) 000-00-00", last_name="Иванова")

    response = admin_client.post(reverse(ADD), data)

    assert response.status_code == 200
    assert errors(response) == {"phone": ["“+7 (000) 000-00-00” is not a valid phone number."]}
    assert Customer.objects.count() == 0


def test_someone_elses_card_is_refused_on_its_field_and_nothing_is_saved(admin_client):
    CustomerFactory(card_number="2900000012345")
    data = form_data(
        admin_client, reverse(ADD), phone="8 912 345-67-89", card_number="2900 0000 1234 5"
    )
    add_row(data, "family_members", name="Пётр", relation="child")
    add_row(data, "consents", channel="sms", granted="1")

    response = admin_client.post(reverse(ADD), data)

    assert response.status_code == 200
    assert errors(response) == {
        "card_number": ["This loyalty card already belongs to another customer."]
    }
    assert Customer.objects.count() == 1
    assert FamilyMember.objects.count() == 0
    assert Consent.objects.count() == 0


def test_changing_to_someone_elses_phone_is_refused_and_the_form_shows_it_normalised(
    admin_client,
):
    CustomerFactory(phone="+79123456789")
    anna = CustomerFactory(phone="+79120000001", city="Москва")
    data = form_data(admin_client, change_url(anna), phone="8 (912) 345-67-89", city="Казань")

    response = admin_client.post(change_url(anna), data)

    assert response.status_code == 200
    assert errors(response) == {"phone": ["This phone number already belongs to another customer."]}
    assert response.context["adminform"].form["phone"].value() == "+79123456789"
    anna.refresh_from_db()
    assert (anna.phone, anna.city) == ("+79120000001", "Москва")


def test_a_birth_date_in_the_future_is_refused(admin_client):
    anna = CustomerFactory(birth_date=dt.date(1980, 5, 1))
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    data = form_data(admin_client, change_url(anna), birth_date=tomorrow.isoformat())

    response = admin_client.post(change_url(anna), data)

    assert errors(response) == {"birth_date": ["A birth date cannot be in the future."]}
    anna.refresh_from_db()
    assert anna.birth_date == dt.date(1980, 5, 1)


def test_an_admin_edit_is_recorded_as_the_admins(admin_client):
    anna = CustomerFactory(city="Тула", field_sources={"city": [Source.APP, "2026-01-01"]})
    data = form_data(admin_client, change_url(anna), city="Тверь")

    assert admin_client.post(change_url(anna), data).status_code == 302

    anna.refresh_from_db()
    assert anna.city == "Тверь"
    assert anna.field_sources["city"][0] == Source.ADMIN


def test_the_change_form_edits_exactly_the_fields_the_services_accept(admin_client):
    response = admin_client.get(reverse(ADD))

    assert set(response.context["adminform"].form.fields) == set(EDITABLE_FIELDS)


# --- consents -----------------------------------------------------------------------------------


def test_consent_history_rows_cannot_be_changed_or_deleted_but_a_new_one_is_added(admin_client):
    customer = CustomerFactory()
    old = ConsentFactory(
        customer=customer, channel="sms", granted=True, occurred_at=timezone.now() - dt.timedelta(1)
    )
    data = form_data(admin_client, change_url(customer))
    data.update(
        {
            "consents-0-channel": "email",
            "consents-0-granted": "0",
            "consents-0-note": "tampered",
            "consents-0-DELETE": "on",
        }
    )
    add_row(data, "consents", channel="sms", granted="0", note="Asked at the till")

    response = admin_client.post(change_url(customer), data)

    assert response.status_code == 302
    old_after = Consent.objects.get(pk=old.pk)
    assert (old_after.channel, old_after.granted, old_after.note) == ("sms", True, "")
    new = Consent.objects.exclude(pk=old.pk).get()
    assert (new.customer, new.channel, new.granted, new.source, new.note) == (
        customer,
        "sms",
        False,
        Source.ADMIN,
        "Asked at the till",
    )
    assert new.recorded_by.is_superuser


def test_a_consent_recorded_in_the_future_is_refused(admin_client):
    customer = CustomerFactory()
    data = form_data(admin_client, change_url(customer))
    tomorrow = timezone.localtime() + dt.timedelta(days=1)
    add_row(
        data,
        "consents",
        channel="sms",
        granted="1",
        occurred_at_0=tomorrow.date().isoformat(),
        occurred_at_1="10:00:00",
    )

    response = admin_client.post(change_url(customer), data)

    assert response.status_code == 200
    consents = next(
        i for i in response.context["inline_admin_formsets"] if i.formset.prefix == "consents"
    )
    assert consents.formset.errors == [
        {"occurred_at": ["A consent cannot be given or withdrawn in the future."]}
    ]
    assert Consent.objects.count() == 0


def test_the_consent_list_is_read_only_for_everyone(admin_client):
    consent = ConsentFactory()
    url = reverse("admin:customers_consent_change", args=[consent.pk])

    assert admin_client.get(reverse("admin:customers_consent_add")).status_code == 403
    assert admin_client.post(url, {"granted": ""}).status_code == 403
    assert admin_client.get(url).status_code == 200
    consent.refresh_from_db()
    assert consent.granted is True


# --- permissions --------------------------------------------------------------------------------


def test_a_marketer_views_and_changes_customers(marketer_client):
    anna = CustomerFactory(city="Москва")
    ConsentFactory(customer=anna)
    assert marketer_client.get(reverse(CHANGELIST)).status_code == 200
    data = form_data(marketer_client, change_url(anna), city="Казань")
    add_row(data, "consents", channel="email", granted="1")

    response = marketer_client.post(change_url(anna), data)

    assert response.status_code == 302
    anna.refresh_from_db()
    assert anna.city == "Казань"
    assert anna.consents.filter(channel="email", recorded_by=marketer_client.user).exists()


def test_a_marketer_cannot_delete_customers(marketer_client):
    anna = CustomerFactory()
    url = reverse("admin:customers_customer_delete", args=[anna.pk])

    assert marketer_client.get(url).status_code == 403
    assert marketer_client.post(url, {"post": "yes"}).status_code == 403
    assert Customer.objects.filter(pk=anna.pk).exists()


def test_a_marketer_sees_purchases_but_cannot_add_or_change_them(marketer_client):
    purchase = PurchaseFactory(total=Decimal("289.00"))
    url = reverse("admin:customers_purchase_change", args=[purchase.pk])

    assert marketer_client.get(url).status_code == 200
    assert marketer_client.post(url, {"total": "1.00"}).status_code == 403
    assert marketer_client.get(reverse("admin:customers_purchase_add")).status_code == 403
    purchase.refresh_from_db()
    assert purchase.total == Decimal("289.00")


def test_purchases_are_read_only_even_for_a_superuser(admin_client):
    purchase = PurchaseFactory(total=Decimal("289.00"))
    url = reverse("admin:customers_purchase_change", args=[purchase.pk])

    assert admin_client.post(url, {"total": "1.00"}).status_code == 403
    assert admin_client.get(reverse("admin:customers_purchase_add")).status_code == 403
    purchase.refresh_from_db()
    assert purchase.total == Decimal("289.00")


def test_all_purchases_of_a_customer_are_one_link_away(admin_client):
    anna, other = CustomerFactory(), CustomerFactory()
    mine = PurchaseFactory(customer=anna)
    PurchaseFactory(customer=other)

    page = admin_client.get(change_url(anna))
    response = admin_client.get(page.context["purchases_url"])

    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [mine.pk]


def test_a_manager_views_customers_but_cannot_change_them(manager_client):
    anna = CustomerFactory(city="Москва")
    assert manager_client.get(change_url(anna)).status_code == 200
    data = form_data(manager_client, change_url(anna), city="Казань")

    response = manager_client.post(change_url(anna), data)

    assert response.status_code == 403
    anna.refresh_from_db()
    assert anna.city == "Москва"


# --- reference lists ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_client", "marketer_client"])
def test_the_reference_lists_section_holds_the_three_lists(request, who):
    client = request.getfixturevalue(who)

    response = client.get(reverse("admin:index"))

    sections = {app["app_label"]: app for app in response.context["app_list"]}
    assert sorted(m["object_name"] for m in sections["references"]["models"]) == [
        "BonusDiscountType",
        "MarketingEventType",
        "PurchaseType",
    ]
    assert "PurchaseType" not in {m["object_name"] for m in sections["customers"]["models"]}


def test_a_reference_code_is_fixed_once_the_row_exists(admin_client):
    retail = PurchaseType.objects.get(code="retail")
    url = reverse("admin:customers_purchasetype_change", args=[retail.pk])

    response = admin_client.post(url, {"code": "changed", "name": "Розница", "is_active": "on"})

    assert response.status_code == 302
    retail.refresh_from_db()
    assert (retail.code, retail.name) == ("retail", "Розница")


# --- every page renders -------------------------------------------------------------------------


def test_every_list_and_page_of_the_customer_base_renders(admin_client):
    customer = CustomerFactory()
    make_history(customer, purchases=2)
    ExternalIdFactory(customer=customer)
    FamilyMemberFactory(customer=customer)
    objects = {
        "customer": customer,
        "purchase": Purchase.objects.first(),
        "consent": Consent.objects.first(),
        "externalid": customer.external_ids.get(),
        "reservation": customer.reservations.get(),
        "store": customer.purchases.first().store,
        "product": ProductFactory(),
        "purchasetype": PurchaseType.objects.first(),
    }
    pages = [
        ("loyalty", "bonusdiscounttype", BonusDiscountType.objects.first()),
        ("campaigns", "marketingeventtype", MarketingEventType.objects.first()),
        *(("customers", name, obj) for name, obj in objects.items()),
    ]

    for app, model, obj in pages:
        changelist = admin_client.get(reverse(f"admin:{app}_{model}_changelist"), {"q": "x"})
        change = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
        assert (model, changelist.status_code, change.status_code) == (model, 200, 200)
