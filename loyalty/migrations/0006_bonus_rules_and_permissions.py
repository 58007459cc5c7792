"""The bonus rules row, the default cumulative discount tiers, and who may see and edit what."""

from decimal import Decimal

from django.contrib.auth.management import create_permissions
from django.db import migrations

REFERENCE = ["view", "add", "change", "delete"]
MARKETER_PERMS = {
    "bonusrules": ["view", "change"],
    "accrualrate": REFERENCE,
    "bonusproductrule": REFERENCE,
    "cumulativediscounttier": REFERENCE,
    "personaldiscount": REFERENCE,
    "bonusaccount": ["view"],
    "bonusmovement": ["view"],
}
MANAGER_PERMS = {
    "bonusrules": ["view"],
    "accrualrate": ["view"],
    "bonusproductrule": ["view"],
    "cumulativediscounttier": ["view"],
    "personaldiscount": ["view", "add", "change"],
    "bonusaccount": ["view", "adjust"],
    "bonusmovement": ["view"],
}
TIERS = [(Decimal("5000.00"), Decimal("3.00")), (Decimal("15000.00"), Decimal("5.00"))]


def grant(apps, group_name, perms):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=group_name)
    codenames = [f"{action}_{model}" for model, actions in perms.items() for action in actions]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="loyalty", codename__in=codenames)
    )


def forwards(apps, schema_editor):
    app_config = apps.get_app_config("loyalty")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    grant(apps, "Marketers", MARKETER_PERMS)
    grant(apps, "Managers", MANAGER_PERMS)
    apps.get_model("loyalty", "BonusRules").objects.get_or_create(pk=1)
    Tier = apps.get_model("loyalty", "CumulativeDiscountTier")
    for threshold, percent in TIERS:
        Tier.objects.get_or_create(threshold=threshold, defaults={"percent": percent})


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0005_bonus_ledger_and_discounts")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
