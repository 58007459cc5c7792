"""Duplicate suspicions to review: merge the pair, or close it as different people."""

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from customers.models import Customer, DuplicateSuspicion, Source
from customers.timeline import TimelineEvent
from customers.timeline_events import SUSPICION_EVENT

from .identity import change_url, customer_link
from .merge import MERGE_PERMISSION, merge_url
from .purchases import ReadOnlyAdminMixin

OPEN_SUSPICIONS_SHOWN = 20


def suspicion_dismiss(*, suspicion: DuplicateSuspicion, user) -> bool:
    """Close an open suspicion as "different people"; False when it was no longer open.

    The pair is never raised again (customers.identity._suspect finds the dismissed one).
    """
    closed = DuplicateSuspicion.objects.filter(
        pk=suspicion.pk, status=DuplicateSuspicion.Status.OPEN
    ).update(
        status=DuplicateSuspicion.Status.DISMISSED, resolved_by=user, resolved_at=timezone.now()
    )
    return bool(closed)


def open_suspicions(
    *, customer: Customer, user, timeline: list[TimelineEvent], timeline_limit: int
) -> list[dict]:
    """The customer's open suspicions for the card, each with where to review and merge it.

    A timeline shorter than its limit holds every event of every provider: when it has no
    suspicion, there is none to list, and the card is spared a query.
    """
    if len(timeline) < timeline_limit and all(e.kind != SUSPICION_EVENT for e in timeline):
        return []
    can_merge = user.has_perm(MERGE_PERMISSION)
    can_view = user.has_perm("customers.view_duplicatesuspicion")
    rows = (
        DuplicateSuspicion.objects.filter(
            Q(customer=customer) | Q(other=customer), status=DuplicateSuspicion.Status.OPEN
        )
        .select_related("customer", "other")
        .order_by("-created_at", "-id")[:OPEN_SUSPICIONS_SHOWN]
    )
    return [
        {
            "suspicion": s,
            "other": s.other if s.customer_id == customer.pk else s.customer,
            "url": change_url(s) if can_view else "",
            "merge_url": merge_url(s.customer_id, s.other_id, suspicion=s) if can_merge else "",
        }
        for s in rows
    ]


class SuspicionStatusFilter(admin.SimpleListFilter):
    """Status, showing the ones to review unless another status (or all) is chosen."""

    title = gettext_lazy("status")
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*DuplicateSuspicion.Status.choices, (self.ALL, _("All"))]

    def _chosen(self) -> str:
        return self.value() or DuplicateSuspicion.Status.OPEN

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self._chosen() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        chosen = self._chosen()
        if chosen == self.ALL:
            return queryset
        if chosen not in DuplicateSuspicion.Status.values:
            raise IncorrectLookupParameters(chosen)
        return queryset.filter(status=chosen)


@admin.register(DuplicateSuspicion)
class DuplicateSuspicionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Raised by identity resolution; a marketer merges the pair or marks them different people."""

    list_display = (
        "created_at",
        "customer_link",
        "other_link",
        "shared",
        "reason",
        "seen_in",
        "status",
    )
    list_select_related = ("customer", "other")
    list_filter = (SuspicionStatusFilter,)
    fields = (
        "customer_link",
        "other_link",
        "shared",
        "reason",
        "seen_in",
        "status",
        "created_at",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields
    actions = ["dismiss_selected"]
    sortable_by = ("created_at",)
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=gettext_lazy("customer the record was attached to"))
    def customer_link(self, suspicion: DuplicateSuspicion):
        return customer_link(suspicion.customer, suspicion.customer_id)

    @admin.display(description=gettext_lazy("possible duplicate"))
    def other_link(self, suspicion: DuplicateSuspicion):
        return customer_link(suspicion.other, suspicion.other_id)

    @admin.display(description=gettext_lazy("seen in"))
    def seen_in(self, suspicion: DuplicateSuspicion) -> str:
        if suspicion.source in Source.values:
            return Source(suspicion.source).label
        return suspicion.source

    @admin.display(description=gettext_lazy("review"))
    def merge_link(self, suspicion: DuplicateSuspicion):
        if suspicion.status != DuplicateSuspicion.Status.OPEN:
            return ""
        url = merge_url(suspicion.customer_id, suspicion.other_id, suspicion=suspicion)
        return format_html('<a href="{}">{}</a>', url, _("Merge…"))

    def has_merge_permission(self, request) -> bool:
        return request.user.has_perm(MERGE_PERMISSION)

    def get_list_display(self, request):
        if self.has_merge_permission(request):
            return (*self.list_display, "merge_link")
        return self.list_display

    @admin.action(description=gettext_lazy("Different people"), permissions=["merge"])
    def dismiss_selected(self, request, queryset):
        dismissed = sum(
            suspicion_dismiss(suspicion=s, user=request.user)
            for s in queryset.filter(status=DuplicateSuspicion.Status.OPEN)
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d suspicion closed as different people.",
                "%(count)d suspicions closed as different people.",
                dismissed,
            )
            % {"count": dismissed},
            messages.SUCCESS,
        )

    def get_urls(self):
        urls = [
            path(
                "<int:object_id>/dismiss/",
                self.admin_site.admin_view(self.dismiss_view),
                name="customers_duplicatesuspicion_dismiss",
            ),
        ]
        return urls + super().get_urls()

    def dismiss_view(self, request, object_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_merge_permission(request):
            raise PermissionDenied
        suspicion = get_object_or_404(DuplicateSuspicion, pk=object_id)
        if suspicion_dismiss(suspicion=suspicion, user=request.user):
            self.message_user(request, _("Closed: these are different people."), messages.SUCCESS)
        else:
            self.message_user(request, _("This suspicion was already closed."), messages.WARNING)
        return HttpResponseRedirect(change_url(suspicion))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if (
            obj is not None
            and obj.status == DuplicateSuspicion.Status.OPEN
            and self.has_merge_permission(request)
        ):
            context["merge_url"] = merge_url(obj.customer_id, obj.other_id, suspicion=obj)
            context["dismiss_url"] = reverse(
                "admin:customers_duplicatesuspicion_dismiss", args=[obj.pk]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)
