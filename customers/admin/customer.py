"""The customer card: search, filters, the change page with its history and timeline."""

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from customers.models import (
    Consent,
    Customer,
    ExternalId,
    FamilyMember,
    Purchase,
    PurchaseLine,
    Reservation,
    Source,
)
from customers.services import EDITABLE_FIELDS, consent_record, customer_create, customer_update
from customers.timeline import customer_timeline

from .filters import CONSENT_FILTERS, BoughtInStoreFilter, CityFilter, HasFamilyFilter
from .forms import ConsentInlineForm, CustomerAdminForm
from .merge import CustomerMergeMixin
from .purchases import ReadOnlyAdminMixin, purchase_lines_summary
from .search import customer_search
from .suspicions import open_suspicions

TIMELINE_LENGTH = 100


class FamilyMemberInline(admin.TabularInline):
    model = FamilyMember
    fields = ("name", "relation", "birth_date", "sex")
    extra = 0


class ConsentInline(admin.TabularInline):
    """The consent history: rows already there are never changed or deleted; new ones append."""

    model = Consent
    form = ConsentInlineForm
    fields = ("channel", "granted", "occurred_at", "note", "source", "recorded_by", "recorded_at")
    readonly_fields = ("source", "recorded_by", "recorded_at")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LatestRowsInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A read-only list of the customer's newest rows; the full list is a link away."""

    max_rows = 50
    extra = 0
    show_change_link = True

    def latest_rows(self, queryset: QuerySet, customer: Customer) -> QuerySet:
        # The formset filters by customer itself, so the limit goes in as a subquery of ids.
        newest = self.model._default_manager.filter(customer=customer).order_by(*self.ordering)
        return queryset.filter(pk__in=newest.values("pk")[: self.max_rows])


class ExternalIdInline(LatestRowsInline):
    model = ExternalId
    fields = ("system", "external_id", "created_at")
    readonly_fields = fields
    ordering = ("system", "id")
    show_change_link = False


class PurchaseInline(LatestRowsInline):
    model = Purchase
    verbose_name_plural = _("latest purchases")
    fields = (
        "purchase_date",
        "store",
        "purchase_type",
        "status",
        "total",
        "discount",
        "bonus_spent",
        "lines",
    )
    readonly_fields = fields
    ordering = ("-purchased_at", "-id")

    def get_queryset(self, request):
        lines = PurchaseLine.objects.select_related("product").order_by("id")
        return (
            super()
            .get_queryset(request)
            .select_related("store", "purchase_type")
            .prefetch_related(Prefetch("lines", queryset=lines))
        )

    @admin.display(description=_("lines"))
    def lines(self, purchase: Purchase) -> str:
        return purchase_lines_summary(purchase)


class ReservationInline(LatestRowsInline):
    model = Reservation
    verbose_name_plural = _("latest reservations")
    fields = ("product", "store", "quantity", "status", "pickup_deadline", "created_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "store")


def _adopt(obj: Customer, saved: Customer) -> None:
    # The admin carries on with the object it built from the form (the inlines hang off it, the
    # redirect uses its pk), so that object must become the customer the service saved.
    for field in Customer._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


@admin.register(Customer)
class CustomerAdmin(CustomerMergeMixin, admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = ("full_name", "phone", "card_number", "email", "city", "source", "created")
    # Only columns with an index behind them: sorting a million rows otherwise sorts the table.
    sortable_by = ("full_name", "phone", "card_number", "city", "created")
    ordering = ("-id",)
    list_filter = (
        CityFilter,
        BoughtInStoreFilter,
        *CONSENT_FILTERS,
        HasFamilyFilter,
        "source",
    )
    # Shows the search box and enables autocomplete; the matching is get_search_results.
    search_fields = ("last_name", "first_name", "middle_name")
    search_help_text = _(
        "A phone in any notation, a card number, an email, or the beginnings of the last, "
        "first and middle name (“иван ан”)."
    )
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # Merging is the one bulk action (CustomerMergeMixin drops "delete selected").
    actions = ["merge_customers"]
    readonly_fields = ("age", "source", "created_at", "updated_at")
    fieldsets = (
        (_("Identifiers"), {"fields": ("phone", "email", "card_number")}),
        (
            _("Person"),
            {"fields": (("last_name", "first_name", "middle_name"), ("birth_date", "age"), "sex")},
        ),
        (_("Address"), {"fields": ("city", "street", ("house", "flat"))}),
        (_("Household"), {"fields": ("household_size",)}),
        (_("Duplicates"), {"fields": ("do_not_merge",)}),
        (_("Origin"), {"fields": ("source", ("created_at", "updated_at"))}),
    )

    @admin.display(description=_("full name"), ordering="last_name")
    def full_name(self, customer: Customer) -> str | None:
        return customer.full_name or None

    @admin.display(description=_("created"), ordering="id")
    def created(self, customer: Customer):
        # Ordered by id: the same order as creation, and indexed.
        return customer.created_at

    @admin.display(description=_("age"))
    def age(self, customer: Customer) -> int | str:
        # Read-only admin methods print None as "None": show the admin's empty marker instead.
        age = customer.age
        return self.get_empty_value_display() if age is None else age

    def get_search_results(self, request, queryset, search_term):
        return customer_search(queryset, search_term), False

    def get_inlines(self, request, obj):
        if obj is None:
            return [FamilyMemberInline, ConsentInline]
        return [
            FamilyMemberInline,
            ConsentInline,
            ExternalIdInline,
            PurchaseInline,
            ReservationInline,
        ]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, LatestRowsInline) and obj is not None and obj.pk:
            kwargs["queryset"] = inline.latest_rows(kwargs["queryset"], obj)
        return kwargs

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
        if change:
            changed = {name: data[name] for name in form.changed_data if name in data}
            customer_update(customer=obj, data=changed)
        else:
            _adopt(obj, customer_create(source=Source.ADMIN, **data))

    def save_formset(self, request, form, formset, change):
        if formset.model is not Consent:
            super().save_formset(request, form, formset, change)
            return
        # Only new rows come back (existing ones are view-only); each is appended by the service.
        new_rows = [row for row in formset.save(commit=False) if row._state.adding]
        formset.new_objects = [
            consent_record(
                customer=formset.instance,
                channel=row.channel,
                granted=row.granted,
                source=Source.ADMIN,
                occurred_at=row.occurred_at,
                recorded_by=request.user,
                note=row.note,
            )
            for row in new_rows
        ]
        formset.changed_objects = []
        formset.deleted_objects = []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Here rather than in change_view: the customer is already loaded, not fetched twice.
        if change and obj is not None and obj.pk:
            timeline = customer_timeline(customer=obj, limit=TIMELINE_LENGTH)
            context["timeline"] = timeline
            context["purchases_url"] = (
                reverse("admin:customers_purchase_changelist") + f"?customer__id__exact={obj.pk}"
            )
            context["consents_url"] = (
                reverse("admin:customers_consent_changelist") + f"?customer__id__exact={obj.pk}"
            )
            context["open_suspicions"] = open_suspicions(
                customer=obj, user=request.user, timeline=timeline, timeline_limit=TIMELINE_LENGTH
            )
        return super().render_change_form(request, context, add, change, form_url, obj)
