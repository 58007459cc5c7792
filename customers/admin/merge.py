"""Merging two customers by hand: the changelist action, the suspicion button, one confirmation.

Both ways lead to the same page: the two cards side by side, which one survives, and a warning
when they look like two people (a marketer may still merge deliberately). The merge itself is
customers.merge.customer_merge.
"""

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from customers.merge import customer_merge, merge_conflict
from customers.models import Customer, DuplicateSuspicion, MergeRecord, Source

MERGE_PERMISSION = "customers.merge_customer"


def merge_url(a_id: int, b_id: int, *, suspicion: DuplicateSuspicion | None = None) -> str:
    """The confirmation page for merging two customers (from a suspicion: back to it on cancel)."""
    url = reverse("admin:customers_customer_merge", args=[a_id, b_id])
    return f"{url}?suspicion={suspicion.pk}" if suspicion is not None else url


def _pair_q(a_id: int, b_id: int) -> Q:
    return Q(customer_id=a_id, other_id=b_id) | Q(customer_id=b_id, other_id=a_id)


@dataclass(frozen=True)
class CustomerCard:
    """What a marketer compares before merging: the card and how much hangs off it."""

    customer: Customer
    purchases: int
    family_members: int
    consents: int
    external_ids: list[str]


def _card(customer: Customer) -> CustomerCard:
    return CustomerCard(
        customer=customer,
        purchases=customer.purchases.count(),
        family_members=customer.family_members.count(),
        consents=customer.consents.count(),
        external_ids=[
            f"{ext.get_system_display()}: {ext.external_id}"
            for ext in customer.external_ids.order_by("system", "external_id")
        ],
    )


def default_survivor(cards: list[CustomerCard]) -> Customer:
    """The one with more purchases survives; between equals, the older record."""
    best = min(cards, key=lambda c: (-c.purchases, c.customer.created_at, c.customer.pk))
    return best.customer


class MergeForm(forms.Form):
    survivor = forms.TypedChoiceField(
        label=gettext_lazy("Keep"), coerce=int, widget=forms.RadioSelect
    )

    def __init__(self, *args, customers: list[Customer], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].choices = [
            (c.pk, _("Keep customer #%(id)s") % {"id": c.pk}) for c in customers
        ]


class CustomerMergeMixin:
    """For CustomerAdmin: the "Merge selected customers" action and the confirmation page."""

    def has_merge_permission(self, request) -> bool:
        return request.user.has_perm(MERGE_PERMISSION)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting customers in bulk is not something marketers do: only merging is offered.
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        urls = [
            path(
                "merge/<int:a_id>/<int:b_id>/",
                self.admin_site.admin_view(self.merge_view),
                name="customers_customer_merge",
            ),
        ]
        return urls + super().get_urls()

    @admin.action(description=gettext_lazy("Merge selected customers"), permissions=["merge"])
    def merge_customers(self, request, queryset):
        # At most three rows are read: enough to tell "exactly two", even with "select all".
        selected = list(queryset.order_by("pk")[:3])
        if len(selected) != 2:
            self.message_user(
                request, _("Select exactly two customers to merge."), messages.WARNING
            )
            return None
        a, b = selected
        return self._merge_page(request, a, b, suspicion=None, data=None)

    def merge_view(self, request, a_id: int, b_id: int):
        if not self.has_merge_permission(request):
            raise PermissionDenied
        found = Customer.objects.in_bulk([a_id, b_id])
        if a_id == b_id or len(found) != 2:
            self.message_user(
                request,
                _("Both customers must exist to be merged; one may have been merged already."),
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:customers_customer_changelist"))
        suspicion = self._suspicion(request, a_id, b_id)
        data = request.POST if request.method == "POST" else None
        return self._merge_page(request, found[a_id], found[b_id], suspicion=suspicion, data=data)

    def _suspicion(self, request, a_id: int, b_id: int) -> DuplicateSuspicion | None:
        raw = request.POST.get("suspicion") or request.GET.get("suspicion") or ""
        if not raw.isdigit():
            return None
        # Only a suspicion about this very pair: the parameter decides where Cancel leads.
        return DuplicateSuspicion.objects.filter(pk=int(raw)).filter(_pair_q(a_id, b_id)).first()

    def _merge_page(self, request, a: Customer, b: Customer, *, suspicion, data):
        cards = [_card(a), _card(b)]
        form = MergeForm(data, customers=[a, b], initial={"survivor": default_survivor(cards).pk})
        if data is not None and form.is_valid():
            survivor, merged = (a, b) if form.cleaned_data["survivor"] == a.pk else (b, a)
            return self._merge(request, survivor, merged)
        if suspicion is not None:
            cancel_url = reverse("admin:customers_duplicatesuspicion_change", args=[suspicion.pk])
        else:
            cancel_url = reverse("admin:customers_customer_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Merge two customers"),
            "columns": list(zip(cards, form["survivor"], strict=True)),
            "form": form,
            "conflict": merge_conflict(a, b),
            "suspicion": suspicion,
            "action_url": merge_url(a.pk, b.pk),
            "cancel_url": cancel_url,
        }
        return TemplateResponse(
            request, "admin/customers/customer/merge_confirmation.html", context
        )

    def _merge(self, request, survivor: Customer, merged: Customer):
        with transaction.atomic():
            # The merge closes the pair's open suspicions; it does not know who decided.
            closing = list(
                DuplicateSuspicion.objects.filter(
                    _pair_q(survivor.pk, merged.pk), status=DuplicateSuspicion.Status.OPEN
                ).values_list("pk", flat=True)
            )
            record = customer_merge(
                survivor=survivor,
                merged=merged,
                reason=MergeRecord.Reason.MANUAL,
                user=request.user,
                source=Source.ADMIN,
            )
            DuplicateSuspicion.objects.filter(
                pk__in=closing, status=DuplicateSuspicion.Status.MERGED
            ).update(resolved_by=request.user)
        purchases = record.moved.get("purchases", 0)
        text = ngettext(
            "Customer #%(merged)s merged into this one (%(purchases)d purchase moved).",
            "Customer #%(merged)s merged into this one (%(purchases)d purchases moved).",
            purchases,
        ) % {"merged": record.merged_customer_id, "purchases": purchases}
        self.log_change(request, survivor, text)
        self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:customers_customer_change", args=[record.survivor_id])
        )
