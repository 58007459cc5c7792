from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # set_language: the admin header's RU/EN switch posts here.
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include("pharmacrm.api.urls")),
]

# JSON error bodies for the API's paths (a URL that matches no route, a server error).
handler404 = "pharmacrm.api.errors.not_found"
handler500 = "pharmacrm.api.errors.server_error"
