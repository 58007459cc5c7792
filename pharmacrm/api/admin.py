from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import ApiClient, Scope


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "key_prefix", "scope_list", "is_active", "last_used_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "key_prefix")
    readonly_fields = ("key_prefix", "created_at", "revoked_at", "last_used_at")
    fields = (
        "name",
        "kind",
        "scopes",
        "throttle_rate",
        "is_active",
        "key_prefix",
        "created_at",
        "revoked_at",
        "last_used_at",
    )
    actions = ["revoke", "rotate"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiClient) -> str:
        return ", ".join(obj.scopes)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["scopes"].help_text = _("A list of: %(scopes)s") % {
            "scopes": ", ".join(Scope.values)
        }
        return form

    def save_model(self, request, obj: ApiClient, form, change) -> None:
        unknown = sorted(set(obj.scopes) - set(Scope.values))
        if unknown:
            obj.scopes = [s for s in obj.scopes if s in Scope.values]
            messages.warning(
                request, _("Unknown scopes dropped: %(scopes)s") % {"scopes": ", ".join(unknown)}
            )
        key = None
        if not change:
            key = obj.new_key()
        super().save_model(request, obj, form, change)
        if key:
            messages.success(
                request,
                _("Token of %(name)s (shown only now, store it safely): %(key)s")
                % {"name": obj.name, "key": key},
            )

    @admin.action(description=_("Revoke the selected clients' tokens"))
    def revoke(self, request, queryset) -> None:
        count = 0
        for client in queryset:
            client.revoke()
            count += 1
        messages.success(
            request,
            ngettext("%(count)s client revoked.", "%(count)s clients revoked.", count)
            % {"count": count},
        )

    @admin.action(description=_("Issue new tokens for the selected clients"))
    def rotate(self, request, queryset) -> None:
        for client in queryset:
            key = client.new_key()
            client.is_active = True
            client.revoked_at = None
            client.save()
            messages.success(
                request,
                _("New token of %(name)s (shown only now): %(key)s")
                % {"name": client.name, "key": key},
            )
