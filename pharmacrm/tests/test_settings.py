import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "TIME_ZONE"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="pharmacrm.settings")
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_the_project_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = _settings_in_subprocess({}, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_mode_runs_without_a_secret_key():
    result = _settings_in_subprocess({"DEBUG": "1"}, "settings.DEBUG")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_time_zone_defaults_to_moscow_and_follows_the_environment():
    default = _settings_in_subprocess({"SECRET_KEY": "x"}, "settings.TIME_ZONE")
    assert default.stdout.strip() == "Europe/Moscow"
    custom = _settings_in_subprocess(
        {"SECRET_KEY": "x", "TIME_ZONE": "Asia/Yekaterinburg"}, "settings.TIME_ZONE"
    )
    assert custom.stdout.strip() == "Asia/Yekaterinburg"


def test_without_a_broker_celery_runs_tasks_in_process():
    env = {"SECRET_KEY": "x", "CELERY_BROKER_URL": ""}
    result = _settings_in_subprocess(env, "settings.CELERY_TASK_ALWAYS_EAGER")
    assert result.stdout.strip() == "True"
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
    result = _settings_in_subprocess(env, "settings.CELERY_TASK_ALWAYS_EAGER")
    assert result.stdout.strip() == "False"


def test_without_database_url_the_embedded_default_is_a_sqlite_file_in_the_project():
    env = {"SECRET_KEY": "x", "DATABASE_URL": ""}
    result = _settings_in_subprocess(env, "settings.DATABASES['default']['NAME']")
    assert result.stdout.strip() == str(ROOT / "db.sqlite3")


def test_russian_is_the_default_language_and_english_is_available():
    result = _settings_in_subprocess(
        {"SECRET_KEY": "x"}, "settings.LANGUAGE_CODE, sorted(dict(settings.LANGUAGES))"
    )
    assert result.stdout.strip() == "ru ['en', 'ru']"
