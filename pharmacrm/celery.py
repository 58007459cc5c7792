"""The Celery application, wired once from Django settings (namespace CELERY_)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacrm.settings")

app = Celery("pharmacrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
