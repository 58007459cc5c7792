"""PharmaCRM settings, read from the environment.

Embedded defaults (SQLite, in-process Celery) make `make run` work on a bare machine;
production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for a local demo)."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "pharmacrm.apps.PharmaAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "pharmacrm.api",
    "customers",
    "loyalty",
    "campaigns",
    "channels",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn, with no separate web server to set up.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pharmacrm.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "pharmacrm.wsgi.application"

# Database: DATABASE_URL, or a SQLite file in the project folder for the embedded demo.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several connections (runserver threads, eager tasks) write to one file: wait, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: Russian is the marketers' language, English the code's.
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
# The chain's time zone: purchase dates, month buckets and status days are taken in it.
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Moscow")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

LOGIN_URL = "admin:login"

# Celery: with no broker configured, tasks run in-process (eagerly) so the demo needs no Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
# A task in flight when its worker dies is redelivered, not lost (tasks are idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Whole-base work — status recomputations, the bonus ledger's daily run — takes seconds to
# minutes: its own queue (and worker), so it never holds up imports and messages.
CELERY_TASK_ROUTES = {
    "loyalty.tasks.statuses_recompute_nightly": {"queue": "statuses"},
    "loyalty.tasks.statuses_recompute_full": {"queue": "statuses"},
    "loyalty.tasks.bonuses_daily": {"queue": "statuses"},
}
# Redis redelivers unacked tasks after the visibility timeout: it must exceed the longest task
# (a full status replay runs for minutes), and the restore sweep must run often enough.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_throttle": 1,
}
# Periodic work, declared in one place. Each entry says when and why.
CELERY_BEAT_SCHEDULE: dict = {
    # Every minute: pick up POS export files dropped into POS_INBOX_DIR, so till sales reach
    # statuses and bonuses within minutes of the export.
    "pos-inbox-scan": {"task": "customers.tasks.pos_inbox_scan", "schedule": 60.0},
    # Every 5 minutes: reservations not picked up by their deadline become expired (and can no
    # longer be cancelled), so the website and the stores see the product free again.
    "reservations-expire": {
        "task": "customers.tasks.reservations_expire_task",
        "schedule": 300.0,
    },
    # 00:05 in the chain's zone: the bonus ledger's day starts — pending accruals whose day has
    # come become available, lots past their validity expire (they end at midnight), and
    # birthdays of the new day get their bonus, before the first stores open. Keyed by day, so
    # a second run (or a redelivered copy) posts nothing. Runs on the `statuses` queue (whole-base
    # work, one task at a time), ahead of the status recomputation at 00:30.
    "bonuses-daily": {
        "task": "loyalty.tasks.bonuses_daily",
        "schedule": crontab(hour=0, minute=5),
    },
    # 00:30 in the chain's zone: every customer's figures, scores and statuses for the new day
    # (a few seconds' work an hour before the first stores open; a missed night is caught up
    # day by day by the next run). Runs on the `statuses` queue.
    "statuses-nightly": {
        "task": "loyalty.tasks.statuses_recompute_nightly",
        "schedule": crontab(hour=0, minute=30),
    },
}

# The REST API (/api/v1/): every call carries an API client's token and needs the scope its
# view declares; errors share one body (pharmacrm/api/errors.py); money is a decimal string.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["pharmacrm.api.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "pharmacrm.api.permissions.HasScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["pharmacrm.api.throttling.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["pharmacrm.api.parsers.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "pharmacrm.api.pagination.PagePagination",
    "EXCEPTION_HANDLER": "pharmacrm.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PharmaCRM API",
    "DESCRIPTION": (
        "The CRM's REST API for the chain's mobile app, website, POS and contact centre. Every "
        "call sends `Authorization: Token <key>` (an API client's token, created with "
        "`manage.py create_api_client`) and needs the scope its endpoint names. Errors are "
        '`{"code", "message", "errors": {field: [{"message", "code"}]}}`; money is a decimal '
        "string; times are ISO 8601 with an offset."
    ),
    "VERSION": "1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
}

# The shared cache (API request limits across web workers): Redis when CACHE_URL is set (as in
# production and CI), else this process's memory.
if os.environ.get("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
    }

# Chain-wide defaults used by the customer base.
PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "RU")
POS_INBOX_DIR = Path(os.environ.get("POS_INBOX_DIR", BASE_DIR / "pos_inbox"))
# Database connections the nightly bonus expiry spreads its chunks over (PostgreSQL).
BONUS_JOB_CONNECTIONS = int(os.environ.get("BONUS_JOB_CONNECTIONS", "2"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
