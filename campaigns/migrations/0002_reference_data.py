from django.contrib.auth.management import create_permissions
from django.db import migrations

TYPES = [
    ("promotion", "Акция"),
    ("seasonal", "Сезонная кампания"),
    ("health_day", "День здоровья"),
    ("newsletter", "Рассылка"),
]


def forwards(apps, schema_editor):
    app_config = apps.get_app_config("campaigns")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    MarketingEventType = apps.get_model("campaigns", "MarketingEventType")
    for code, name in TYPES:
        MarketingEventType.objects.get_or_create(code=code, defaults={"name": name})
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="campaigns")
    Group.objects.get(name="Marketers").permissions.add(
        *perms.filter(codename__in=["view_marketingeventtype", "add_marketingeventtype",
                                    "change_marketingeventtype"])
    )
    Group.objects.get(name="Managers").permissions.add(
        *perms.filter(codename="view_marketingeventtype")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("customers", "0002_reference_data_and_groups"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
