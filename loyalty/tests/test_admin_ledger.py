"""The bonus ledger in the admin (accounts, movements, the adjustment form, the customer page's
bonus panel) and on the customer's timeline."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.tests.factories import CustomerFactory, ProductFactory, staff_client
from customers.timeline import customer_timeline
from loyalty.ledger import bonus_adjust, bonus_grant, bonus_redeem
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement, BonusRules, MovementKind
from loyalty.selectors import bonus_overview, with_bonus_overview
from loyalty.tests.factories import bonus_purchase

pytestmark = pytest.mark.django_db
D = Decimal


def account(customer) -> tuple[Decimal, Decimal, Decimal]:
    a = BonusAccount.objects.get(customer=customer)
    return a.balance, a.pending, a.debt


def adjust_url(customer) -> str:
    return reverse("admin:loyalty_bonusaccount_adjust", args=[customer.pk])


def customer_url(customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def form_token(client, customer) -> str:
    response = client.get(adjust_url(customer))
    assert response.status_code == 200
    return response.context["form"]["token"].value()


def a_customer_with_a_ledger():
    """40.00 of a campaign, 3.00 accrued on a purchase, 10.00 spent, a manager's correction."""
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "40.00", key="c1", campaign_ref="SPRING")
    purchase = bonus_purchase(customer, ProductFactory(), "100.00")
    bonus_redeem(customer.pk, "10.00", key="r1")
    bonus_adjust(customer.pk, "-5.00", reason="Duplicate receipt", key="a1")
    return customer, purchase


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["Marketers", "Managers"])
def test_the_account_and_movement_pages_load_for_marketers_and_managers(client, group):
    staff_client(client, group)
    customer, purchase = a_customer_with_a_ledger()
    movement = BonusMovement.objects.get(purchase=purchase)
    pages = [
        reverse("admin:loyalty_bonusaccount_changelist"),
        reverse("admin:loyalty_bonusaccount_changelist") + "?has_debt=no",
        reverse("admin:loyalty_bonusaccount_change", args=[customer.pk]),
        reverse("admin:loyalty_bonusmovement_changelist"),
        reverse("admin:loyalty_bonusmovement_changelist") + "?kind=accrual",
        reverse("admin:loyalty_bonusmovement_changelist") + f"?customer={customer.pk}",
        reverse("admin:loyalty_bonusmovement_change", args=[movement.pk]),
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_the_account_list_shows_the_figures_and_finds_customers_by_phone_and_card(
    marketer_client,
):
    customer, _ = a_customer_with_a_ledger()
    other = CustomerFactory()
    bonus_grant(other.pk, MovementKind.CAMPAIGN, "1.00", key="other")
    url = reverse("admin:loyalty_bonusaccount_changelist")

    def listed(**params):
        response = marketer_client.get(url, params)
        assert response.status_code == 200
        return [
            (a.customer_id, a.balance, a.pending, a.debt)
            for a in response.context["cl"].result_list
        ]

    assert listed() == [
        (other.pk, D("1.00"), D("0.00"), D("0.00")),
        (customer.pk, D("28.00"), D("0.00"), D("0.00")),
    ]
    # A phone as people type it, and a card number.
    phone = customer.phone  # +7912...
    assert listed(q=f"8 ({phone[2:5]}) {phone[5:8]}-{phone[8:10]}-{phone[10:]}") == [
        (customer.pk, D("28.00"), D("0.00"), D("0.00"))
    ]
    assert [row[0] for row in listed(q=other.card_number)] == [other.pk]


def test_the_has_debt_filter_lists_the_accounts_returns_left_in_debt(marketer_client):
    indebted, clear = CustomerFactory(), CustomerFactory()
    bonus_adjust(indebted.pk, "-12.50", reason="Returned after spending", key="d")
    bonus_grant(clear.pk, MovementKind.CAMPAIGN, "5.00", key="g")
    url = reverse("admin:loyalty_bonusaccount_changelist")
    with_debt = marketer_client.get(url, {"has_debt": "yes"}).context["cl"].result_list
    without = marketer_client.get(url, {"has_debt": "no"}).context["cl"].result_list
    assert [(a.customer_id, a.debt) for a in with_debt] == [(indebted.pk, D("12.50"))]
    assert [a.customer_id for a in without] == [clear.pk]


def test_the_movement_list_filters_by_customer_and_kind_and_links_the_purchase(
    marketer_client,
):
    customer, purchase = a_customer_with_a_ledger()
    bonus_grant(CustomerFactory().pk, MovementKind.CAMPAIGN, "7.00", key="someone-else")
    url = reverse("admin:loyalty_bonusmovement_changelist")
    response = marketer_client.get(url, {"customer": customer.pk})
    rows = response.context["cl"].result_list
    assert [(m.kind, m.amount) for m in rows] == [
        (MovementKind.ADJUSTMENT, D("-5.00")),
        (MovementKind.REDEMPTION, D("-10.00")),
        (MovementKind.ACCRUAL, D("3.00")),
        (MovementKind.CAMPAIGN, D("40.00")),
    ]
    html = response.content.decode()
    purchase_url = reverse("admin:customers_purchase_change", args=[purchase.pk])
    assert f'<a href="{purchase_url}">{purchase.external_id}</a>' in html
    assert "Duplicate receipt" in html
    accruals = marketer_client.get(url, {"customer": customer.pk, "kind": "accrual"})
    assert [m.amount for m in accruals.context["cl"].result_list] == [D("3.00")]
    # The customer's phone in the search box finds the same ledger.
    searched = marketer_client.get(url, {"q": customer.phone})
    assert len(searched.context["cl"].result_list) == 4


def test_the_movement_list_costs_the_same_queries_for_50_rows_as_for_5(marketer_client):
    url = reverse("admin:loyalty_bonusmovement_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(url).status_code == 200
        return len(captured)

    for _ in range(5):
        bonus_purchase(CustomerFactory(), ProductFactory(), "100.00")
    few = queries()
    for _ in range(45):
        bonus_purchase(CustomerFactory(), ProductFactory(), "100.00")
    assert queries() == few


def test_the_customer_picker_finds_customers_through_the_customer_search(marketer_client):
    customer = CustomerFactory()
    response = marketer_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "loyalty",
            "model_name": "bonusmovement",
            "field_name": "customer",
            "term": customer.card_number,
        },
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(customer.pk)]
    page = marketer_client.get(reverse("admin:loyalty_bonusmovement_changelist"))
    assert 'id="customer-picker"' in page.content.decode()
    assert "admin/js/autocomplete.js" in page.content.decode()


def test_nobody_adds_changes_or_deletes_ledger_rows_in_the_admin(admin_client):
    customer, purchase = a_customer_with_a_ledger()
    movement = BonusMovement.objects.get(purchase=purchase)
    before = list(BonusMovement.objects.order_by("pk").values_list("pk", "amount"))
    assert admin_client.get(reverse("admin:loyalty_bonusmovement_add")).status_code == 403
    assert admin_client.get(reverse("admin:loyalty_bonusaccount_add")).status_code == 403
    delete = reverse("admin:loyalty_bonusmovement_delete", args=[movement.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:loyalty_bonusmovement_change", args=[movement.pk])
    assert admin_client.post(change, {"amount": "1000.00"}).status_code == 403
    account_change = reverse("admin:loyalty_bonusaccount_change", args=[customer.pk])
    assert admin_client.post(account_change, {"balance": "1000.00"}).status_code == 403
    assert list(BonusMovement.objects.order_by("pk").values_list("pk", "amount")) == before
    assert account(customer) == (D("28.00"), D("0.00"), D("0.00"))


def test_a_debit_shows_the_lots_it_took(marketer_client):
    customer = CustomerFactory()
    first = bonus_grant(customer.pk, MovementKind.CAMPAIGN, "4.00", key="first")
    second = bonus_grant(customer.pk, MovementKind.CAMPAIGN, "10.00", key="second")
    spent = bonus_redeem(customer.pk, "6.00", key="spend")
    response = marketer_client.get(
        reverse("admin:loyalty_bonusmovement_change", args=[spent.movement_id])
    )
    [inline] = response.context["inline_admin_formsets"]
    taken = [(f.form.instance.credit_id, f.form.instance.amount) for f in inline]
    assert sorted(taken) == [(first.movement_id, D("4.00")), (second.movement_id, D("2.00"))]


# --- the adjustment form -----------------------------------------------------------------------


def test_a_marketer_may_not_open_or_post_the_adjustment_form(marketer_client):
    customer = CustomerFactory()
    assert marketer_client.get(adjust_url(customer)).status_code == 403
    response = marketer_client.post(
        adjust_url(customer), {"amount": "100.00", "reason": "Goodwill", "token": "a" * 32}
    )
    assert response.status_code == 403
    assert not BonusMovement.objects.exists()
    account_page = marketer_client.get(
        reverse("admin:loyalty_bonusaccount_change", args=[customer.pk])
    )
    assert adjust_url(customer) not in account_page.content.decode()


def test_a_manager_posts_an_adjustment_once_even_if_the_form_is_sent_twice(manager_client):
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "30.00", key="c")
    token = form_token(manager_client, customer)
    data = {"amount": "150.00", "reason": "Complaint 4411: goodwill", "token": token}

    first = manager_client.post(adjust_url(customer), data, follow=True)
    second = manager_client.post(adjust_url(customer), data, follow=True)

    assert first.redirect_chain == [(customer_url(customer), 302)]
    assert second.redirect_chain == [(customer_url(customer), 302)]
    assert [str(m) for m in first.context["messages"]] == [
        "Adjustment +150.00 posted. Available 180.00, debt 0.00."
    ]
    assert [str(m) for m in second.context["messages"]] == [
        "This adjustment (+150.00) was already posted: the form was sent twice. Nothing more "
        "was posted."
    ]
    adjustment = BonusMovement.objects.get(kind=MovementKind.ADJUSTMENT)
    assert (
        adjustment.amount,
        adjustment.reason,
        adjustment.created_by,
        adjustment.channel,
        adjustment.idempotency_key,
    ) == (
        D("150.00"),
        "Complaint 4411: goodwill",
        manager_client.user,
        "admin",
        f"admin-adjust:{token}",
    )
    assert account(customer) == (D("180.00"), D("0.00"), D("0.00"))
    assert ledger_differences() == []


def test_a_negative_adjustment_beyond_the_balance_leaves_debt(manager_client):
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "30.00", key="c")
    response = manager_client.post(
        adjust_url(customer),
        {
            "amount": "-50.00",
            "reason": "Bonus granted twice",
            "token": form_token(manager_client, customer),
        },
    )
    assert response.status_code == 302
    assert account(customer) == (D("0.00"), D("0.00"), D("20.00"))
    assert BonusMovement.objects.get(kind=MovementKind.ADJUSTMENT).uncovered == D("20.00")


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        ("12.345", "Typo", "amount", "At most two decimal places."),
        ("-12.345", "Typo", "amount", "At most two decimal places."),
        ("twelve", "Typo", "amount", "Not a number."),
        ("0", "Typo", "amount", "Must be greater than zero."),
        ("NaN", "Typo", "amount", "Not a number."),
        ("1e20", "Typo", "amount", "Too large."),
        ("", "Typo", "amount", "This field is required."),
        ("10.00", "", "reason", "This field is required."),
        ("10.00", "   ", "reason", "This field is required."),
    ],
)
def test_a_bad_adjustment_is_refused_on_its_field_and_posts_nothing(
    manager_client, amount, reason, field, message
):
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "30.00", key="c")
    token = form_token(manager_client, customer)
    response = manager_client.post(
        adjust_url(customer), {"amount": amount, "reason": reason, "token": token}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {field: [message]}
    assert form["token"].value() == token  # the same form again: a corrected resend posts once
    html = response.content.decode()
    assert re.search(rf'class="form-row errors field-{field}"', html)
    assert message in html
    assert not BonusMovement.objects.filter(kind=MovementKind.ADJUSTMENT).exists()
    assert account(customer) == (D("30.00"), D("0.00"), D("0.00"))


def test_every_bad_field_is_reported_at_once(manager_client):
    customer = CustomerFactory()
    response = manager_client.post(
        adjust_url(customer),
        {"amount": "12.345", "reason": "", "token": form_token(manager_client, customer)},
    )
    assert response.context["form"].errors == {
        "amount": ["At most two decimal places."],
        "reason": ["This field is required."],
    }
    assert not BonusMovement.objects.exists()


def test_a_form_without_its_token_or_reused_for_another_amount_is_refused(manager_client):
    customer = CustomerFactory()
    url = adjust_url(customer)
    missing = manager_client.post(url, {"amount": "5.00", "reason": "Goodwill"})
    assert missing.context["form"].errors == {
        "token": ["The form is incomplete; open the adjustment form again."]
    }
    assert "The form is incomplete" in missing.content.decode()
    token = form_token(manager_client, customer)
    manager_client.post(url, {"amount": "5.00", "reason": "Goodwill", "token": token})
    # Back in the browser, the amount changed, the same form sent again.
    reused = manager_client.post(url, {"amount": "7.00", "reason": "Goodwill", "token": token})
    assert reused.status_code == 200
    assert reused.context["form"].non_field_errors() == [
        "This form already posted a different adjustment; open the adjustment form again to "
        "post another one."
    ]
    assert list(BonusMovement.objects.values_list("amount", flat=True)) == [D("5.00")]


def test_the_adjustment_form_of_an_unknown_customer_is_not_found(manager_client):
    assert (
        manager_client.get(reverse("admin:loyalty_bonusaccount_adjust", args=[987654])).status_code
        == 404
    )


# --- the timeline --------------------------------------------------------------------------


def test_every_movement_is_on_the_timeline_with_its_kind_signed_amount_purchase_and_reason():
    customer, purchase = a_customer_with_a_ledger()
    events = [e for e in customer_timeline(customer=customer) if e.kind == "bonus"]
    assert [(e.title, e.detail) for e in events] == [
        ("Bonuses -5.00: Manual adjustment", "Duplicate receipt"),
        ("Bonuses -10.00: Redemption at checkout", ""),
        ("Bonuses +3.00: Accrual on a purchase", f"purchase {purchase.external_id}"),
        ("Bonuses +40.00: Campaign bonus", "activity SPRING"),
    ]
    movements = BonusMovement.objects.filter(customer=customer).order_by("-created_at", "-id")
    assert [e.url for e in events] == [
        reverse("admin:loyalty_bonusmovement_change", args=[m.pk]) for m in movements
    ]
    assert [e.at for e in events] == [m.created_at for m in movements]


def test_the_timeline_reads_the_movements_in_one_query(django_assert_num_queries):
    from loyalty.timeline_events import bonus_movement_events

    customer = CustomerFactory()
    for _ in range(30):
        bonus_purchase(customer, ProductFactory(), "100.00")
    bonus_adjust(customer.pk, "-1.00", reason="Correction", key="x")
    with django_assert_num_queries(1):
        events = list(bonus_movement_events(customer, 100))
    assert len(events) == 31


# --- the customer page ---------------------------------------------------------------------


def test_the_customer_page_shows_the_account_what_expires_soon_and_the_newest_movements(
    manager_client,
):
    rules = BonusRules.objects.get()
    rules.activation_days = 14
    rules.save()
    customer = CustomerFactory()
    now = timezone.now()
    # Valid 365 days from 340 days ago: expires within the next 30 days.
    bonus_grant(
        customer.pk, MovementKind.CAMPAIGN, "20.00", key="old", now=now - dt.timedelta(days=340)
    )
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "100.00", key="new")
    purchase = bonus_purchase(customer, ProductFactory(), "100.00")  # 3.00, waits 14 days
    for n in range(25):
        bonus_adjust(customer.pk, "1.00", reason=f"Correction {n}", key=f"adj-{n}")

    response = manager_client.get(customer_url(customer))

    assert response.status_code == 200
    panel = response.context["bonus_panel"]
    overview = panel["overview"]
    assert (overview.available, overview.pending, overview.debt, overview.expiring) == (
        D("145.00"),
        D("3.00"),
        D("0.00"),
        D("20.00"),
    )
    # The same through the selector's own queries (the adjustment form's path).
    assert bonus_overview(customer=customer).expiring == D("20.00")
    newest = BonusMovement.objects.filter(customer=customer).order_by("-created_at", "-id")[:20]
    assert [m.pk for m in overview.movements] == [m.pk for m in newest]
    assert overview.movements[0].reason == "Correction 24"
    assert panel["adjust_url"] == adjust_url(customer)
    assert panel["ledger_url"] == (
        reverse("admin:loyalty_bonusmovement_changelist") + f"?customer={customer.pk}"
    )
    html = response.content.decode()
    assert 'id="bonus-account"' in html
    assert f'href="{adjust_url(customer)}"' in html
    assert f'href="{panel["ledger_url"]}"' in html
    assert '<td class="bonus-available">145.00</td>' in html
    assert '<td class="bonus-expiring">20.00</td>' in html
    assert html.count('class="bonus-movement ') == 20
    # The timeline has every movement (the 28 fit in its 100 events).
    bonus_events = [e for e in response.context["timeline"] if e.kind == "bonus"]
    assert len(bonus_events) == 28
    accrual = next(e for e in bonus_events if "Accrual" in e.title)
    assert accrual.detail.startswith(f"purchase {purchase.external_id}; available from ")


def test_a_marketer_sees_the_bonus_panel_without_the_adjustment_link(marketer_client):
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "5.00", key="g")
    response = marketer_client.get(customer_url(customer))
    assert response.context["bonus_panel"]["adjust_url"] == ""
    html = response.content.decode()
    assert 'id="bonus-account"' in html
    assert adjust_url(customer) not in html


def test_a_customer_without_bonuses_shows_an_empty_account(manager_client):
    customer = CustomerFactory()
    response = manager_client.get(customer_url(customer))
    overview = response.context["bonus_panel"]["overview"]
    assert (overview.available, overview.pending, overview.debt, overview.expiring) == (
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert "No bonus movements yet." in response.content.decode()
    assert not BonusAccount.objects.filter(customer=customer).exists()


def test_staff_without_the_bonus_permission_do_not_see_the_panel(client):
    user = User.objects.create_user(username="clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "5.00", key="g")
    response = client.get(customer_url(customer))
    assert response.status_code == 200
    assert response.context["bonus_panel"] is None
    assert 'id="bonus-account"' not in response.content.decode()


def test_the_customer_page_costs_the_same_queries_with_120_movements_or_300(manager_client):
    # Both fill the 100-event timeline (with fewer, the customers app finds duplicate
    # suspicions among the events and skips a query of its own).
    def queries(customer) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager_client.get(customer_url(customer)).status_code == 200
        return len(captured)

    some, many = CustomerFactory(), CustomerFactory()
    product = ProductFactory()
    for customer, purchases in ((some, 60), (many, 150)):
        for n in range(purchases):
            bonus_purchase(customer, product, "100.00")
            bonus_adjust(customer.pk, "-0.01", reason=f"Rounding {n}", key=f"r-{customer.pk}-{n}")
    queries(some)  # warm per-process caches (content types, sessions)
    assert BonusMovement.objects.filter(customer=some).count() == 120
    assert BonusMovement.objects.filter(customer=many).count() == 300
    assert queries(many) == queries(some)


def test_a_customer_loaded_for_the_overview_needs_no_more_queries(django_assert_num_queries):
    from customers.models import Customer

    customer, _ = a_customer_with_a_ledger()
    empty = CustomerFactory()
    with django_assert_num_queries(2):  # the customers with their accounts, then the movements
        loaded = {c.pk: c for c in with_bonus_overview(Customer.objects.order_by("pk"))}
    with django_assert_num_queries(0):
        overview = bonus_overview(customer=loaded[customer.pk])
        nothing = bonus_overview(customer=loaded[empty.pk])
    assert (overview.available, overview.pending, overview.debt, overview.expiring) == (
        D("28.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert [m.kind for m in overview.movements] == [
        MovementKind.ADJUSTMENT,
        MovementKind.REDEMPTION,
        MovementKind.ACCRUAL,
        MovementKind.CAMPAIGN,
    ]
    assert (nothing.available, nothing.movements) == (D("0.00"), [])
    # Loaded plainly, the same figures in two queries.
    plain_customer = Customer.objects.get(pk=customer.pk)
    with django_assert_num_queries(2):
        plain = bonus_overview(customer=plain_customer)
    assert (plain.available, plain.pending, plain.debt, plain.expiring, plain.movements) == (
        overview.available,
        overview.pending,
        overview.debt,
        overview.expiring,
        overview.movements,
    )
