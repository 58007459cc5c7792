"""The admin side of "one customer across every channel": merging, suspicions, import runs."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from customers.admin import imports as imports_admin
from customers.identity import IdentityRecord, customer_resolve
from customers.merge import customer_merge
from customers.models import (
    Customer,
    DuplicateSuspicion,
    ExternalId,
    FamilyMember,
    IdentifierAlias,
    ImportIssue,
    ImportRun,
    MergeRecord,
    Purchase,
    Source,
)
from customers.tasks import pos_upload_import
from customers.tests.factories import (
    ConsentFactory,
    CustomerFactory,
    ExternalIdFactory,
    FamilyMemberFactory,
    PurchaseFactory,
    StoreFactory,
)
from customers.tests.pos_xml_builders import pos_xml_bytes

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")
SUSPICIONS = reverse("admin:customers_duplicatesuspicion_changelist")
RUNS = reverse("admin:customers_importrun_changelist")
UPLOAD = reverse("admin:customers_importrun_upload")
CONFIRMATION = "admin/customers/customer/merge_confirmation.html"
NUROFEN = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "289.00"}


def staff_client(client, username: str, group: str | None = None, perms: tuple[str, ...] = ()):
    user = User.objects.create_user(username=username, password="x", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="customers", codename=codename)
        )
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def marketer_client(client):
    return staff_client(client, "marketer", "Marketers")


@pytest.fixture
def manager_client(client):
    return staff_client(client, "manager", "Managers")


def customer_url(customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def merge_url(a, b) -> str:
    return reverse("admin:customers_customer_merge", args=[a.pk, b.pk])


def select(client, *customers):
    return client.post(
        CHANGELIST,
        {"action": "merge_customers", "index": 0, "_selected_action": [c.pk for c in customers]},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def anna_and_her_app_account():
    """Two records of one person: the till's (older, 3 purchases) and the app's (1 purchase)."""
    till = CustomerFactory(phone="+79120000001", email=None, card_number="2900000000011")
    for _ in range(3):
        PurchaseFactory(customer=till)
    app = CustomerFactory(
        phone="+79120000002", email="anna@example.ru", card_number=None, source=Source.APP
    )
    PurchaseFactory(customer=app)
    FamilyMemberFactory(customer=app, name="Пётр")
    ConsentFactory(customer=app, channel="email")
    ExternalIdFactory(customer=app, system=ExternalId.System.APP, external_id="app-77")
    return till, app


def test_merging_two_selected_customers_goes_through_a_confirmation_page(marketer_client):
    till, app = anna_and_her_app_account()

    page = select(marketer_client, till, app)

    assert page.status_code == 200
    assert page.templates[0].name == CONFIRMATION
    cards = [card for card, _radio in page.context["columns"]]
    assert [c.customer for c in cards] == [till, app]
    assert [(c.purchases, c.family_members, c.consents) for c in cards] == [(3, 0, 0), (1, 1, 1)]
    assert cards[1].external_ids == ["Mobile app: app-77"]
    assert page.context["form"]["survivor"].value() == till.pk  # more purchases
    assert page.context["conflict"] is None
    content = page.content.decode()
    assert "+79120000001" in content and "+79120000002" in content
    assert "anna@example.ru" in content and "2900000000011" in content
    assert 'id="merge-conflict"' not in content

    done = marketer_client.post(page.context["action_url"], {"survivor": till.pk})

    assert done.status_code == 302
    assert done["Location"] == customer_url(till)
    assert list(Customer.objects.values_list("pk", flat=True)) == [till.pk]
    assert Purchase.objects.filter(customer=till).count() == 4
    assert FamilyMember.objects.get().customer == till
    assert ExternalId.objects.get().customer == till
    record = MergeRecord.objects.get()
    assert (record.survivor, record.merged_customer_id) == (till, app.pk)
    assert (record.reason, record.source) == (MergeRecord.Reason.MANUAL, Source.ADMIN)
    assert record.merged_by == marketer_client.user
    assert record.merged_phone == "+79120000002"
    assert messages_of(done) == [f"Customer #{app.pk} merged into this one (1 purchase moved)."]
    till.refresh_from_db()
    # The app is trusted over the till: its phone wins, the till's still finds the survivor.
    assert (till.phone, till.email) == ("+79120000002", "anna@example.ru")
    assert IdentifierAlias.objects.get(kind="phone").value == "+79120000001"


def test_the_marketer_chooses_which_customer_survives(marketer_client):
    till, app = anna_and_her_app_account()
    response = marketer_client.post(merge_url(till, app), {"survivor": app.pk})
    assert response["Location"] == customer_url(app)
    assert list(Customer.objects.values_list("pk", flat=True)) == [app.pk]
    assert Purchase.objects.filter(customer=app).count() == 4


def test_between_equal_purchase_counts_the_older_customer_is_proposed(marketer_client):
    older, newer = CustomerFactory(), CustomerFactory()
    Customer.objects.filter(pk=newer.pk).update(created_at=timezone.now() - dt.timedelta(days=9))
    Customer.objects.filter(pk=older.pk).update(created_at=timezone.now() - dt.timedelta(days=90))
    page = marketer_client.get(merge_url(newer, older))
    assert page.context["form"]["survivor"].value() == older.pk


@pytest.mark.parametrize("count", [1, 3])
def test_merging_anything_but_two_customers_is_refused(marketer_client, count):
    customers = [CustomerFactory() for _ in range(count)]
    response = select(marketer_client, *customers)
    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert messages_of(response) == ["Select exactly two customers to merge."]
    assert Customer.objects.count() == count
    assert not MergeRecord.objects.exists()


def test_merging_needs_the_merge_permission_not_change_and_delete(client):
    staff_client(client, "editor", perms=("view_customer", "change_customer", "delete_customer"))
    a, b = CustomerFactory(), CustomerFactory()

    response = select(client, a, b)
    assert response.status_code == 200
    assert CONFIRMATION not in [t.name for t in response.templates]
    assert b"Merge selected customers" not in response.content
    assert b"Delete selected" not in response.content
    assert client.get(merge_url(a, b)).status_code == 403
    assert client.post(merge_url(a, b), {"survivor": a.pk}).status_code == 403
    assert Customer.objects.count() == 2
    assert not MergeRecord.objects.exists()


def test_a_manager_cannot_merge(manager_client):
    a, b = CustomerFactory(), CustomerFactory()
    assert manager_client.post(merge_url(a, b), {"survivor": a.pk}).status_code == 403
    assert Customer.objects.count() == 2


def test_the_page_warns_when_the_two_look_like_different_people_yet_allows_the_merge(
    marketer_client,
):
    mother = CustomerFactory(first_name="Анна")
    son = CustomerFactory(first_name="Пётр")

    page = select(marketer_client, mother, son)

    assert page.context["conflict"] == "different first names"
    assert "These may be two different people: different first names." in page.content.decode()
    response = marketer_client.post(merge_url(mother, son), {"survivor": mother.pk})
    assert response["Location"] == customer_url(mother)
    assert list(Customer.objects.values_list("pk", flat=True)) == [mother.pk]


def test_a_missing_customer_or_an_unknown_survivor_merges_nothing(marketer_client):
    a, b = CustomerFactory(), CustomerFactory()
    other = CustomerFactory()
    response = marketer_client.post(merge_url(a, b), {"survivor": other.pk})
    assert response.status_code == 200
    assert response.context["form"].errors["survivor"]
    gone = marketer_client.get(reverse("admin:customers_customer_merge", args=[a.pk, 10**9]))
    assert gone["Location"] == CHANGELIST
    assert Customer.objects.count() == 3
    assert not MergeRecord.objects.exists()


def family_sharing_a_phone():
    """A mother and her son; the son's card shows up with her phone: a suspicion."""
    pos = Source.POS
    mother = customer_resolve(
        record=IdentityRecord(
            source=pos, card="2900000000011", phone="89123456789", data={"first_name": "Анна"}
        )
    ).customer
    son = customer_resolve(
        record=IdentityRecord(source=pos, card="2900000000028", data={"first_name": "Пётр"})
    ).customer
    customer_resolve(record=IdentityRecord(source=pos, card="2900000000028", phone="+79123456789"))
    return mother, son, DuplicateSuspicion.objects.get()


def test_a_suspicion_is_merged_from_its_page_and_closed(marketer_client):
    mother, son, suspicion = family_sharing_a_phone()
    PurchaseFactory(customer=son)
    page = marketer_client.get(
        reverse("admin:customers_duplicatesuspicion_change", args=[suspicion.pk])
    )
    button = f"{merge_url(son, mother)}?suspicion={suspicion.pk}"
    assert button in page.content.decode()

    confirmation = marketer_client.get(button)
    assert confirmation.context["suspicion"] == suspicion
    assert confirmation.context["conflict"] == "different first names"
    assert confirmation.context["cancel_url"] == page.wsgi_request.path
    response = marketer_client.post(
        merge_url(son, mother), {"survivor": son.pk, "suspicion": suspicion.pk}
    )

    assert response["Location"] == customer_url(son)
    assert list(Customer.objects.values_list("pk", flat=True)) == [son.pk]
    suspicion.refresh_from_db()
    assert suspicion.status == DuplicateSuspicion.Status.MERGED
    assert suspicion.resolved_by == marketer_client.user
    assert suspicion.resolved_at is not None
    assert MergeRecord.objects.get().merged_by == marketer_client.user


def test_different_people_closes_the_suspicion_for_good(marketer_client):
    _mother, _son, suspicion = family_sharing_a_phone()

    response = marketer_client.post(
        reverse("admin:customers_duplicatesuspicion_dismiss", args=[suspicion.pk])
    )

    assert response.status_code == 302
    suspicion.refresh_from_db()
    assert suspicion.status == DuplicateSuspicion.Status.DISMISSED
    assert suspicion.resolved_by == marketer_client.user
    assert suspicion.resolved_at is not None
    again = customer_resolve(
        record=IdentityRecord(source=Source.POS, card="2900000000028", phone="89123456789")
    )
    assert again.suspicions == [suspicion]
    assert list(DuplicateSuspicion.objects.values_list("pk", "status")) == [
        (suspicion.pk, DuplicateSuspicion.Status.DISMISSED)
    ]
    assert Customer.objects.count() == 2


def test_a_dismissed_pair_merged_later_does_not_hide_a_new_pair():
    mother, son, suspicion = family_sharing_a_phone()
    DuplicateSuspicion.objects.filter(pk=suspicion.pk).update(status="dismissed")
    customer_merge(survivor=mother, merged=son, reason=MergeRecord.Reason.MANUAL)
    daughter = CustomerFactory(card_number="2900000000035", phone=None, first_name="Ольга")

    resolution = customer_resolve(
        record=IdentityRecord(source=Source.POS, card="2900000000035", phone="89123456789")
    )

    new = DuplicateSuspicion.objects.get(status=DuplicateSuspicion.Status.OPEN)
    assert resolution.suspicions == [new]
    assert (new.customer, new.other) == (daughter, mother)


def test_dismissing_needs_the_merge_permission_and_a_post(manager_client, client):
    _mother, _son, suspicion = family_sharing_a_phone()
    url = reverse("admin:customers_duplicatesuspicion_dismiss", args=[suspicion.pk])
    assert manager_client.post(url).status_code == 403
    marketer = staff_client(client, "marketer", "Marketers")
    assert marketer.get(url).status_code == 405
    suspicion.refresh_from_db()
    assert (suspicion.status, suspicion.resolved_by) == (DuplicateSuspicion.Status.OPEN, None)


def test_the_suspicion_list_shows_open_ones_unless_asked(marketer_client):
    _mother, _son, suspicion = family_sharing_a_phone()
    closed = DuplicateSuspicion.objects.create(
        customer=CustomerFactory(),
        other=CustomerFactory(),
        shared="card",
        reason="x",
        source="pos",
        status=DuplicateSuspicion.Status.DISMISSED,
    )

    def listed(**params):
        response = marketer_client.get(SUSPICIONS, params)
        assert response.status_code == 200
        return [s.pk for s in response.context["cl"].result_list]

    assert listed() == [suspicion.pk]
    assert listed(status="dismissed") == [closed.pk]
    assert listed(status="all") == [closed.pk, suspicion.pk]
    response = marketer_client.post(
        SUSPICIONS, {"action": "dismiss_selected", "index": 0, "_selected_action": [suspicion.pk]}
    )
    assert messages_of(response) == ["1 suspicion closed as different people."]
    assert listed() == []


def test_the_customer_page_lists_open_suspicions_with_a_merge_link(marketer_client):
    mother, son, suspicion = family_sharing_a_phone()
    content = marketer_client.get(customer_url(mother)).content.decode()
    assert 'id="customer-duplicates"' in content
    assert f"{merge_url(son, mother)}?suspicion={suspicion.pk}" in content
    assert f"Possible duplicate: customer #{son.pk} (shares phone)" in content

    DuplicateSuspicion.objects.update(status=DuplicateSuspicion.Status.DISMISSED)
    content = marketer_client.get(customer_url(mother)).content.decode()
    assert 'id="customer-duplicates"' not in content


def test_the_timeline_shows_a_merge(marketer_client):
    till, app = anna_and_her_app_account()
    marketer_client.post(merge_url(till, app), {"survivor": till.pk})
    timeline = marketer_client.get(customer_url(till)).context["timeline"]
    merge = next(event for event in timeline if event.kind == "merge")
    assert merge.title == f"Merged with customer #{app.pk} (+79120000002, anna@example.ru)"
    assert merge.detail == "Merged by a CRM user, marketer"
    assert merge.url == reverse(
        "admin:customers_mergerecord_change", args=[MergeRecord.objects.get().pk]
    )


def test_merge_records_are_found_by_the_merged_identifiers_and_read_as_tables(marketer_client):
    till, app = anna_and_her_app_account()
    customer_merge(survivor=till, merged=app, reason=MergeRecord.Reason.MANUAL)
    record = MergeRecord.objects.get()
    url = reverse("admin:customers_mergerecord_changelist")
    for term in ("8 (912) 000-00-02", "ANNA@example.ru", str(app.pk)):
        response = marketer_client.get(url, {"q": term})
        assert [r.pk for r in response.context["cl"].result_list] == [record.pk], term
    assert list(marketer_client.get(url, {"q": "+79120000001"}).context["cl"].result_list) == []

    detail = marketer_client.get(reverse("admin:customers_mergerecord_change", args=[record.pk]))
    content = detail.content.decode()
    assert "<tr><th>phone</th><td>+79120000002</td></tr>" in content
    assert "<tr><th>purchases</th><td>1</td></tr>" in content
    assert "<tr><th>family members</th><td>1</td></tr>" in content


def test_old_identifiers_are_found_by_value_in_any_notation(marketer_client):
    till, app = anna_and_her_app_account()
    customer_merge(survivor=till, merged=app, reason=MergeRecord.Reason.MANUAL)
    url = reverse("admin:customers_identifieralias_changelist")
    response = marketer_client.get(url, {"q": "8 912 000 00 01"})
    assert [(a.kind, a.value, a.customer) for a in response.context["cl"].result_list] == [
        ("phone", "+79120000001", till)
    ]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def pos_upload(name="Аптека 17 выгрузка.xml"):
    content = pos_xml_bytes(
        "A-017",
        [
            {
                "id": "1",
                "datetime": "2026-11-20T14:03:11+03:00",
                "lines": [NUROFEN],
                "customer": {"card": "2900000012345", "phone": "+7 (912) 345-67-89"},
            },
            {
                "id": "2",
                "datetime": "2026-11-20T15:00:00+03:00",
                "lines": [NUROFEN],
                "customer": {"phone": "12345"},
            },
        ],
    )
    return SimpleUploadedFile(name, content, content_type="text/xml")


def test_a_pos_file_uploaded_in_the_admin_is_imported(marketer_client, media, celery_eager):
    StoreFactory(code="A-017")
    assert 'href="/admin/customers/importrun/upload/"' in marketer_client.get(RUNS).content.decode()

    response = marketer_client.post(UPLOAD, {"file": pos_upload()})

    run = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:customers_importrun_change", args=[run.pk])
    assert messages_of(response) == ["“Аптека 17 выгрузка.xml” imported."]
    assert (run.status, run.file_name, run.store_code) == (
        "done",
        "Аптека 17 выгрузка.xml",
        "A-017",
    )
    assert run.started_by == marketer_client.user
    assert (run.records, run.created, run.rejected, run.warnings) == (2, 1, 1, 0)
    assert (run.customers_created, run.customers_matched) == (1, 0)
    [stored] = (media / "pos_uploads").iterdir()
    assert stored.name.endswith("-Аптека_17_выгрузка.xml")
    page = marketer_client.get(response["Location"])
    issue = ImportIssue.objects.get()
    assert (issue.record_id, issue.field) == ("2", "customer.phone")
    assert issue.message in page.content.decode()
    assert "1 issue in this run." in page.content.decode()


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("export.csv", b"<export/>", "File extension “csv” is not allowed."),
        ("export.xml", b"id;total\n1;289.00\n", "This is not an XML file."),
    ],
)
def test_a_file_that_is_not_xml_is_refused_by_the_form(
    marketer_client, media, name, content, error
):
    response = marketer_client.post(UPLOAD, {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 200
    assert error in response.context["form"].errors["file"][0]
    assert not ImportRun.objects.exists()
    assert not (media / "pos_uploads").exists()


def test_a_file_too_large_is_refused(marketer_client, media, monkeypatch):
    monkeypatch.setattr(imports_admin, "UPLOAD_MAX_BYTES", 10)
    response = marketer_client.post(UPLOAD, {"file": pos_upload()})
    assert response.context["form"].errors["file"] == ["The file is larger than 10\xa0bytes."]
    assert not ImportRun.objects.exists()


def test_the_run_page_shows_its_issues_capped_with_a_count(marketer_client, monkeypatch):
    monkeypatch.setattr(imports_admin, "ISSUES_SHOWN", 2)
    run = ImportRun.objects.create(
        kind=ImportRun.Kind.POS_XML, file_name="x.xml", status="done", records=3, rejected=3
    )
    for position in (3, 1, 2):
        ImportIssue.objects.create(
            run=run,
            level="error",
            position=position,
            record_id=f"P{position}",
            message=f"bad {position}",
        )
    page = marketer_client.get(reverse("admin:customers_importrun_change", args=[run.pk]))
    assert page.status_code == 200
    [formset] = page.context["inline_admin_formsets"]
    assert [form.instance.record_id for form in formset.formset.forms] == ["P1", "P2"]
    content = page.content.decode()
    assert "Showing the first 2 of 3 issues; the report has them all." in content
    assert "x.xml: Done" in content  # the summary
    report = marketer_client.get(reverse("admin:customers_importrun_report", args=[run.pk]))
    assert report.content.decode().splitlines()[-1] == "  Rejected P3 []: bad 3"


def test_a_manager_views_runs_but_cannot_upload(manager_client, media):
    run = ImportRun.objects.create(kind=ImportRun.Kind.POS_XML, file_name="x.xml", status="done")
    listing = manager_client.get(RUNS)
    assert listing.status_code == 200
    assert "/upload/" not in listing.content.decode()
    assert (
        manager_client.get(reverse("admin:customers_importrun_change", args=[run.pk])).status_code
        == 200
    )
    assert manager_client.get(UPLOAD).status_code == 403
    assert manager_client.post(UPLOAD, {"file": pos_upload()}).status_code == 403
    assert ImportRun.objects.count() == 1
    assert not (media / "pos_uploads").exists()


def test_the_upload_task_with_a_vanished_file_does_nothing(tmp_path):
    pos_upload_import(str(tmp_path / "gone.xml"), None, "gone.xml")
    assert not ImportRun.objects.exists()


def test_marketers_may_merge_and_upload_managers_only_view_runs():
    marketers = Group.objects.get(name="Marketers").permissions.values_list("codename", flat=True)
    managers = Group.objects.get(name="Managers").permissions.values_list("codename", flat=True)
    assert {"merge_customer", "view_duplicatesuspicion", "add_importrun", "view_importrun"} <= set(
        marketers
    )
    assert {"view_importrun", "view_importissue"} <= set(managers)
    assert not {"merge_customer", "add_importrun"} & set(managers)
    assert not {"delete_customer"} & set(marketers)
