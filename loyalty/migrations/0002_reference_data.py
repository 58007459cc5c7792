from django.contrib.auth.management import create_permissions
from django.db import migrations

TYPES = [
    ("welcome", "Приветственный бонус", "bonus"),
    ("birthday", "Бонус ко дню рождения", "bonus"),
    ("campaign", "Бонус по акции", "bonus"),
    ("cumulative", "Накопительная скидка", "discount"),
    ("personal", "Персональная скидка", "discount"),
]


def forwards(apps, schema_editor):
    app_config = apps.get_app_config("loyalty")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    BonusDiscountType = apps.get_model("loyalty", "BonusDiscountType")
    for code, name, kind in TYPES:
        BonusDiscountType.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="loyalty")
    Group.objects.get(name="Marketers").permissions.add(
        *perms.filter(codename__in=["view_bonusdiscounttype", "add_bonusdiscounttype",
                                    "change_bonusdiscounttype"])
    )
    Group.objects.get(name="Managers").permissions.add(
        *perms.filter(codename="view_bonusdiscounttype")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0001_initial"),
        ("customers", "0002_reference_data_and_groups"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
