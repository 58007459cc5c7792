"""Bonus rules and discounts in the admin: who may see and change what, what is recorded, and
the discount on the customer's page."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.models import Customer
from customers.tests.factories import CustomerFactory, ProductFactory, StoreFactory, staff_client
from loyalty.models import (
    AccrualRate,
    BonusDiscountType,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    PersonalDiscount,
)
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db

D = Decimal
RULES = reverse("admin:loyalty_bonusrules_change", args=[1])


def form_data(client, url: str, **fields) -> dict[str, str]:
    """What the page's form would post back untouched, with `fields` changed."""
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["adminform"].form
    data = {
        name: "" if form.initial.get(name) is None else str(form.initial[name])
        for name in form.fields
    }
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(len(formset.initial_forms))
        data[f"{formset.prefix}-INITIAL_FORMS"] = str(len(formset.initial_forms))
        for row in formset.initial_forms:
            data[f"{row.prefix}-id"] = str(row.instance.pk)
            data[f"{row.prefix}-customer"] = str(row.instance.customer_id)
    # Unticked checkboxes are not posted.
    data = {name: value for name, value in data.items() if value != "False"}
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


def readonly(html: str, field: str) -> str:
    match = re.search(rf'field-{field}">.*?<div class="readonly">(.*?)</div>', html, re.DOTALL)
    assert match, field
    return match.group(1).strip()


def personal_type() -> BonusDiscountType:
    return BonusDiscountType.objects.get(code="personal")


# --- the pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_client", "marketer_client", "manager_client"])
def test_every_bonus_and_discount_page_opens_for_those_who_may_see_it(request, who):
    client = request.getfixturevalue(who)
    customer = CustomerFactory()
    discount = PersonalDiscount.objects.create(
        customer=customer, discount_type=personal_type(), percent=D("5"), valid_from=dt.date.today()
    )
    rule = BonusProductRule.objects.create(product=ProductFactory())
    rate = AccrualRate.objects.create(purchase_type_id=1, percent=D("2"))
    tier = CumulativeDiscountTier.objects.get(threshold=5000)
    pages = [
        RULES,
        reverse("admin:loyalty_accrualrate_changelist"),
        reverse("admin:loyalty_accrualrate_change", args=[rate.pk]),
        reverse("admin:loyalty_bonusproductrule_changelist"),
        reverse("admin:loyalty_bonusproductrule_change", args=[rule.pk]),
        reverse("admin:loyalty_cumulativediscounttier_changelist"),
        reverse("admin:loyalty_cumulativediscounttier_change", args=[tier.pk]),
        reverse("admin:loyalty_personaldiscount_changelist"),
        reverse("admin:loyalty_personaldiscount_changelist") + "?validity=current",
        reverse("admin:loyalty_personaldiscount_change", args=[discount.pk]),
        reverse("admin:loyalty_personaldiscount_add"),
        reverse("admin:customers_customer_change", args=[customer.pk]),
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page


def test_the_rules_list_opens_the_one_row_and_the_row_cannot_be_added_or_deleted(admin_client):
    response = admin_client.get(reverse("admin:loyalty_bonusrules_changelist"))

    assert (response.status_code, response.url) == (302, RULES)
    assert admin_client.get(reverse("admin:loyalty_bonusrules_add")).status_code == 403
    assert admin_client.get(reverse("admin:loyalty_bonusrules_delete", args=[1])).status_code == 403
    assert BonusRules.objects.count() == 1


def test_the_rules_page_shows_the_bonus_value_and_the_overrides(admin_client):
    AccrualRate.objects.create(purchase_type_id=1, status="vip", percent=D("9.5"))
    BonusProductRule.objects.create(product=ProductFactory(), excluded=True)

    html = admin_client.get(RULES).content.decode()

    assert readonly(html, "bonus_value") == "1 bonus = 1 rouble"
    assert "Розничная продажа · VIP: 9.50 %" in readonly(html, "accrual_overrides")
    assert "1 excluded, 0 allowed despite the prescription rule" in readonly(
        html, "product_exceptions"
    )


# --- who may change what ------------------------------------------------------------------------


def test_a_marketer_changes_the_rules_and_is_recorded_as_the_editor(marketer_client):
    data = form_data(marketer_client, RULES, max_redeem_share="25", accrual_vip="8.5")

    response = marketer_client.post(RULES, data)

    assert (response.status_code, response.url) == (302, RULES)
    rules = BonusRules.objects.get()
    assert (rules.max_redeem_share, rules.accrual_vip) == (D("25.00"), D("8.50"))
    assert rules.accrual_growing == D("5.00")  # untouched
    assert rules.exclude_prescription_only is True
    assert rules.updated_by == marketer_client.user


def test_a_manager_sees_the_rules_but_cannot_change_them(manager_client):
    page = manager_client.get(RULES)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()

    response = manager_client.post(RULES, {"max_redeem_share": "90"})

    assert response.status_code == 403
    rules = BonusRules.objects.get()
    assert (rules.max_redeem_share, rules.updated_by) == (D("30.00"), None)


def test_bonuses_expiring_before_they_become_available_are_refused(marketer_client):
    data = form_data(marketer_client, RULES, activation_days="30", expiry_days="30")

    response = marketer_client.post(RULES, data)

    assert response.status_code == 200
    assert errors(response) == {
        "expiry_days": ["Bonuses must stay valid longer than they wait to become available."]
    }
    rules = BonusRules.objects.get()
    assert (rules.activation_days, rules.expiry_days, rules.updated_by) == (0, 365, None)


def test_tiers_are_edited_in_the_list_by_marketers_only(marketer_client, client):
    changelist = reverse("admin:loyalty_cumulativediscounttier_changelist")
    low, high = CumulativeDiscountTier.objects.order_by("threshold")
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": str(low.pk),
        "form-0-percent": "3.5",
        "form-0-is_active": "on",
        "form-1-id": str(high.pk),
        "form-1-percent": "5",
        # form-1-is_active unticked
        "_save": "Save",
    }

    response = marketer_client.post(changelist, data)

    assert response.status_code == 302
    low.refresh_from_db()
    high.refresh_from_db()
    assert (low.percent, low.is_active, high.percent, high.is_active) == (
        D("3.50"),
        True,
        D("5.00"),
        False,
    )
    manager = staff_client(client, "Managers")
    assert manager.get(changelist).context["cl"].formset is None


def test_a_manager_adds_a_personal_discount_and_is_recorded_as_its_author(manager_client):
    customer = CustomerFactory()

    response = manager_client.post(
        reverse("admin:loyalty_personaldiscount_add"),
        {
            "customer": str(customer.pk),
            "discount_type": str(personal_type().pk),
            "percent": "12.5",
            "valid_from": "2026-05-01",
            "valid_until": "2026-05-31",
            "reason": "Жалоба на обслуживание",
        },
    )

    assert response.status_code == 302
    discount = PersonalDiscount.objects.get()
    assert (discount.customer, discount.percent, discount.created_by) == (
        customer,
        D("12.50"),
        manager_client.user,
    )
    delete = reverse("admin:loyalty_personaldiscount_delete", args=[discount.pk])
    assert manager_client.post(delete, {"post": "yes"}).status_code == 403
    assert PersonalDiscount.objects.count() == 1


def test_a_personal_discount_takes_discount_types_only(admin_client):
    add = reverse("admin:loyalty_personaldiscount_add")
    choices = admin_client.get(add).context["adminform"].form.fields["discount_type"].queryset
    assert {kind.code for kind in choices} == {"cumulative", "personal"}

    response = admin_client.post(
        add,
        {
            "customer": str(CustomerFactory().pk),
            "discount_type": str(BonusDiscountType.objects.get(code="birthday").pk),
            "percent": "5",
            "valid_from": "2026-05-01",
        },
    )

    assert list(errors(response)) == ["discount_type"]
    assert not PersonalDiscount.objects.exists()


def test_products_and_customers_are_picked_by_autocomplete(admin_client):
    ProductFactory(name="Нурофен таблетки", sku="4600000000011")
    CustomerFactory(last_name="Смирнова")

    products = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "loyalty",
            "model_name": "bonusproductrule",
            "field_name": "product",
            "term": "Нурофен",  # SQLite folds the case of ASCII only
        },
    ).json()
    customers = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "loyalty",
            "model_name": "personaldiscount",
            "field_name": "customer",
            "term": "смирнова",
        },
    ).json()

    assert [row["text"] for row in products["results"]] == ["Нурофен таблетки (4600000000011)"]
    assert [row["text"] for row in customers["results"]] == ["Смирнова Анна Сергеевна"]


# --- the customer's page ------------------------------------------------------------------------


def customer_page(customer: Customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def test_the_customer_page_shows_the_current_discount_and_the_next_tier(admin_client):
    customer = CustomerFactory()
    buy(customer, StoreFactory(), dt.date(2026, 3, 1), "6000.00")

    html = admin_client.get(customer_page(customer)).content.decode()

    assert readonly(html, "current_discount") == (
        "Cumulative discount 3 % (purchases from 5,000 ₽); lifetime purchases 6,000 ₽; "
        "9,000 ₽ more for 5 %"
    )


def test_the_customer_page_shows_a_personal_discount_that_beats_the_tier(admin_client):
    customer = CustomerFactory()
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=personal_type(),
        percent=D("7"),
        valid_from=dt.date(2020, 1, 1),
    )

    html = admin_client.get(customer_page(customer)).content.decode()

    assert readonly(html, "current_discount") == ("Персональная скидка 7 %; lifetime purchases 0 ₽")


def test_without_a_discount_the_customer_page_says_so(admin_client):
    html = admin_client.get(customer_page(CustomerFactory())).content.decode()

    assert readonly(html, "current_discount") == (
        "No discount; lifetime purchases 0 ₽; 5,000 ₽ more for 3 %"
    )


def test_a_marketer_adds_a_personal_discount_on_the_customer_page(marketer_client):
    customer = CustomerFactory(phone="+79123456789")
    url = customer_page(customer)
    data = form_data(marketer_client, url)
    add_row(
        data,
        "personal_discounts",
        discount_type=str(personal_type().pk),
        percent="4",
        valid_from="2026-05-01",
        valid_until="",
        reason="Постоянный клиент",
    )

    response = marketer_client.post(url, data)

    assert response.status_code == 302, response.context and errors(response)
    discount = PersonalDiscount.objects.get(customer=customer)
    assert (discount.percent, discount.reason, discount.created_by) == (
        D("4.00"),
        "Постоянный клиент",
        marketer_client.user,
    )
    customer.refresh_from_db()
    assert customer.phone == "+79123456789"  # the rest of the card untouched


def test_the_discount_and_its_inline_cost_the_customer_page_a_fixed_number_of_queries(
    admin_client,
):
    few, many = CustomerFactory(), CustomerFactory()
    for percent in range(1, 6):
        PersonalDiscount.objects.create(
            customer=many,
            discount_type=personal_type(),
            percent=D(percent),
            valid_from=dt.date(2026, 1, 1),
        )
    admin_client.get(customer_page(few))  # warm per-process caches (content types, sessions)

    def count(customer) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(customer_page(customer)).status_code == 200
        return len(queries)

    # Each row's select of discount types renders from one query, not one per row.
    assert count(many) == count(few)
