"""The admin site marketers use: Russian titles and reference lists gathered in one section."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

REFERENCE_APP_LABEL = "references"


class PharmaAdminSite(admin.AdminSite):
    site_header = _("PharmaCRM")
    site_title = _("PharmaCRM")
    index_title = _("Customer base and marketing")

    def get_app_list(self, request, app_label=None):
        """Move every model flagged `reference_list = True` into one "Reference lists" section.

        The lists live in the app that owns them (purchase types in customers, bonus types in
        loyalty, ...), but marketers edit them together.
        """
        app_list = super().get_app_list(request, app_label=None)
        references = []
        for app in app_list:
            keep = []
            for model in app["models"]:
                if getattr(model["model"], "reference_list", False):
                    references.append(model)
                else:
                    keep.append(model)
            app["models"] = keep
        app_list = [app for app in app_list if app["models"]]
        if references:
            references.sort(key=lambda m: str(m["name"]))
            app_list.append(
                {
                    "name": _("Reference lists"),
                    "app_label": REFERENCE_APP_LABEL,
                    "app_url": "",
                    "has_module_perms": True,
                    "models": references,
                }
            )
        if app_label == REFERENCE_APP_LABEL:
            return [app for app in app_list if app["app_label"] == REFERENCE_APP_LABEL]
        if app_label:
            return [app for app in app_list if app["app_label"] == app_label]
        return app_list
