"""Admin forms: identifiers normalised and checked where the marketer typed them."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Consent, Customer
from customers.normalize import normalize_card, normalize_email, normalize_phone
from customers.services import EDITABLE_FIELDS, IDENTIFIER_FIELDS, customer_identifiers_check


class CustomerAdminForm(forms.ModelForm):
    # Wider than the stored values: "+7 (912) 345-67-89" is longer than its E.164 form.
    phone = forms.CharField(
        label=_("phone"),
        max_length=40,
        required=False,
        help_text=_("Any notation: 8 (912) 345-67-89, +7 912 345 67 89, ..."),
    )
    email = forms.CharField(
        label=_("email"), max_length=254, required=False, widget=forms.EmailInput
    )
    card_number = forms.CharField(
        label=_("loyalty card number"),
        max_length=40,
        required=False,
        help_text=_("13 digits; spaces and dashes are ignored."),
    )

    class Meta:
        model = Customer
        fields = EDITABLE_FIELDS

    def clean_phone(self) -> str | None:
        return normalize_phone(self.cleaned_data["phone"])

    def clean_email(self) -> str | None:
        return normalize_email(self.cleaned_data["email"])

    def clean_card_number(self) -> str | None:
        return normalize_card(self.cleaned_data["card_number"])

    def clean_birth_date(self):
        born = self.cleaned_data["birth_date"]
        if born and born > timezone.localdate():
            raise ValidationError(_("A birth date cannot be in the future."), code="future")
        return born

    def clean(self):
        cleaned = super().clean()
        identifiers = {name: cleaned[name] for name in IDENTIFIER_FIELDS if name in cleaned}
        self._show_normalised(identifiers)
        try:
            customer_identifiers_check(
                identifiers=identifiers,
                customer=self.instance if self.instance.pk else None,
            )
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field, errors)
        return cleaned

    def _show_normalised(self, identifiers: dict[str, str | None]) -> None:
        # Should the form come back (an error anywhere), the marketer sees the stored form of
        # what they typed; and an identifier typed differently but equal is not a change.
        data = self.data.copy()
        for name, value in identifiers.items():
            data[self.add_prefix(name)] = value or ""
        self.data = data


class ConsentInlineForm(forms.ModelForm):
    """A new grant or withdrawal; existing rows are never edited (the inline is view-only)."""

    granted = forms.TypedChoiceField(
        label=_("decision"),
        choices=[("", "---------"), ("1", _("Granted")), ("0", _("Withdrawn"))],
        coerce=lambda value: value == "1",
    )

    class Meta:
        model = Consent
        fields = ("channel", "granted", "occurred_at", "note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "occurred_at" in self.fields:
            self.fields["occurred_at"].required = False
            self.fields["occurred_at"].help_text = _("Leave empty for now.")

    def clean_occurred_at(self):
        occurred_at = self.cleaned_data["occurred_at"]
        if occurred_at and occurred_at > timezone.now():
            raise ValidationError(
                _("A consent cannot be given or withdrawn in the future."), code="future"
            )
        return occurred_at
