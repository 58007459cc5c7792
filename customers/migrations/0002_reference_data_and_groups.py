"""Purchase types the POS format ships with, and the Marketers and Managers groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PURCHASE_TYPES = [
    ("retail", "Розничная продажа"),
    ("preorder", "Предзаказ"),
    ("delivery", "Доставка"),
]

# Marketers work the customer base; managers read it (and download reports, added later).
MARKETER_PERMS = {
    "customer": ["view", "add", "change"],
    "familymember": ["view", "add", "change", "delete"],
    "externalid": ["view"],
    "consent": ["view", "add"],
    "store": ["view"],
    "product": ["view", "add", "change"],
    "purchase": ["view"],
    "purchaseline": ["view"],
    "reservation": ["view"],
    "purchasetype": ["view", "add", "change"],
}
MANAGER_PERMS = {
    model: ["view"]
    for model in (
        "customer", "familymember", "externalid", "consent", "store", "product",
        "purchase", "purchaseline", "reservation", "purchasetype",
    )
}
MANAGER_PERMS["store"] = ["view", "add", "change"]
MANAGER_PERMS["product"] = ["view", "add", "change"]


def grant(apps, group_name, app_label, perms):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=group_name)
    codenames = [f"{action}_{model}" for model, actions in perms.items() for action in actions]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
    )


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations; create ours now to grant them.
    app_config = apps.get_app_config("customers")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    PurchaseType = apps.get_model("customers", "PurchaseType")
    for code, name in PURCHASE_TYPES:
        PurchaseType.objects.get_or_create(code=code, defaults={"name": name})
    grant(apps, "Marketers", "customers", MARKETER_PERMS)
    grant(apps, "Managers", "customers", MANAGER_PERMS)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
