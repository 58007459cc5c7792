"""The status settings row, the figures table's fillfactor, and who may see and edit what."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MARKETER_PERMS = {
    "statussettings": ["view", "change"],
    "statusrun": ["view"],
    "customerfigures": ["view"],
    "statuschange": ["view"],
}
MANAGER_PERMS = {
    "statussettings": ["view"],
    "statusrun": ["view"],
    "customerfigures": ["view"],
    "statuschange": ["view"],
}


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
    apps.get_model("loyalty", "StatusSettings").objects.get_or_create(pk=1)
    if schema_editor.connection.vendor == "postgresql":
        # Nightly runs rewrite changed rows in place: room on each page keeps the updates HOT.
        schema_editor.execute("ALTER TABLE loyalty_customerfigures SET (fillfactor = 80)")


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0003_statuses"),
        ("customers", "0006_identity_and_import_permissions"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
