import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacrm.settings")

application = get_wsgi_application()

# What is loaded by now (Django, the apps and their modules) lives as long as the process: moved
# out of the collector's generations, so a full collection on a request no longer walks it (an
# API request's worst case was a 40-58 ms collection before this).
gc.freeze()
