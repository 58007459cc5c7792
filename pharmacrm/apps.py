from django.contrib.admin.apps import AdminConfig


class PharmaAdminConfig(AdminConfig):
    default_site = "pharmacrm.admin_site.PharmaAdminSite"
