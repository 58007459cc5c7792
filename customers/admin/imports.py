"""Import runs: what each file brought and what it rejected, and uploading a POS file by hand."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import FileExtensionValidator
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import ImportIssue, ImportRun
from customers.selectors import import_run_summary
from customers.tasks import pos_upload_import

from .purchases import ReadOnlyAdminMixin

UPLOAD_DIR = "pos_uploads"
# A till's daily export is a few megabytes; a year's history of a large store is hundreds.
UPLOAD_MAX_BYTES = 500 * 1024 * 1024
ISSUES_SHOWN = 500
SUMMARY_ISSUES = 20
REPORT_MAX_ISSUES = 100_000


class PosUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("POS export file"), validators=[FileExtensionValidator(["xml"])]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _("The till's XML export (.xml), at most %(size)s.") % {
            "size": filesizeformat(UPLOAD_MAX_BYTES)
        }

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        if upload.size > UPLOAD_MAX_BYTES:
            raise ValidationError(
                _("The file is larger than %(size)s.") % {"size": filesizeformat(UPLOAD_MAX_BYTES)},
                code="too_large",
            )
        # Only a look at the start: the import checks the whole file before storing anything.
        head = upload.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
        upload.seek(0)
        if not head.startswith(b"<"):
            raise ValidationError(_("This is not an XML file."), code="not_xml")
        return upload


def pos_upload_store(upload: UploadedFile) -> Path:
    """Save an upload under MEDIA_ROOT/pos_uploads/<timestamp>-<safe name>; never overwrites."""
    folder = Path(settings.MEDIA_ROOT) / UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    try:
        safe = get_valid_filename(Path(upload.name).name)[-150:]
    except SuspiciousFileOperation:
        safe = "upload.xml"
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"{stamp}-{safe}"
    with open(target, "xb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


class ImportIssueInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ImportIssue
    fields = ("level", "position", "record_id", "field", "message")
    readonly_fields = fields
    ordering = ("position", "id")
    extra = 0

    def first_issues(self, queryset, run: ImportRun):
        # The formset filters by run itself, so the cap goes in as a subquery of ids.
        first = ImportIssue.objects.filter(run=run).order_by(*self.ordering)
        return queryset.filter(pk__in=first.values("pk")[:ISSUES_SHOWN])


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only for everyone; adding a run means uploading a file (customers.add_importrun)."""

    list_display = (
        "started_at",
        "file_name",
        "kind",
        "store_code",
        "status",
        *ImportRun.COUNT_FIELDS,
    )
    list_filter = ("kind", "status")
    search_fields = ("file_name",)
    sortable_by = ("started_at",)
    show_facets = admin.ShowFacets.NEVER
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("file_name", "kind", "store_code"),
                    ("status", "error"),
                    ("started_at", "finished_at", "started_by"),
                    "checksum",
                )
            },
        ),
        (
            gettext_lazy("Purchases"),
            {"fields": (("records", "created", "updated", "unchanged", "rejected", "warnings"),)},
        ),
        (
            gettext_lazy("Customers"),
            {
                "fields": (
                    ("customers_created", "customers_matched", "customers_merged", "suspicions"),
                )
            },
        ),
        (gettext_lazy("Report"), {"fields": ("summary",)}),
    )
    readonly_fields = (
        "file_name",
        "kind",
        "store_code",
        "status",
        "error",
        "started_at",
        "finished_at",
        "started_by",
        "checksum",
        *ImportRun.COUNT_FIELDS,
        "summary",
    )
    inlines = [ImportIssueInline]

    def has_add_permission(self, request, obj=None):
        # "Adding" a run is uploading a file to import; the row itself is the import's.
        return request.user.has_perm("customers.add_importrun")

    @admin.display(description=gettext_lazy("summary"))
    def summary(self, run: ImportRun):
        return format_html("<pre>{}</pre>", import_run_summary(run=run, max_issues=SUMMARY_ISSUES))

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, ImportIssueInline) and obj is not None:
            kwargs["queryset"] = inline.first_issues(kwargs["queryset"], obj)
        return kwargs

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["issues_total"] = obj.issues.count()
            context["issues_shown"] = min(context["issues_total"], ISSUES_SHOWN)
            context["report_url"] = reverse("admin:customers_importrun_report", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/", wrap(self.upload_view), name="customers_importrun_upload"),
            path(
                "<int:object_id>/report.txt",
                wrap(self.report_view),
                name="customers_importrun_report",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:customers_importrun_upload"))

    def report_view(self, request, object_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ImportRun, pk=object_id)
        text = import_run_summary(run=run, max_issues=REPORT_MAX_ISSUES) + "\n"
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-run-{run.pk}.txt"'
        return response

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PosUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            return self._queue_upload(request, form.cleaned_data["file"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Upload POS file"),
            "form": form,
        }
        return TemplateResponse(request, "admin/customers/importrun/upload.html", context)

    def _queue_upload(self, request, upload: UploadedFile):
        original = Path(upload.name).name
        stored = pos_upload_store(upload)
        queued_at = timezone.now()
        pos_upload_import.delay(str(stored), request.user.pk, original)
        # With a worker the run appears once the task starts; eagerly (demo) it is done already.
        run = (
            ImportRun.objects.filter(
                started_by=request.user, file_name=original, started_at__gte=queued_at
            )
            .order_by("-id")
            .first()
        )
        if run is None:
            self.message_user(
                request,
                _("“%(name)s” is queued for import; its run appears here when it starts.")
                % {"name": original},
                messages.INFO,
            )
            return HttpResponseRedirect(reverse("admin:customers_importrun_changelist"))
        texts = {
            ImportRun.Status.RUNNING: (_("“%(name)s” is being imported."), messages.INFO),
            ImportRun.Status.DONE: (_("“%(name)s” imported."), messages.SUCCESS),
            ImportRun.Status.FAILED: (_("“%(name)s” was refused."), messages.ERROR),
        }
        text, level = texts[run.status]
        self.message_user(request, text % {"name": original}, level)
        return HttpResponseRedirect(reverse("admin:customers_importrun_change", args=[run.pk]))
