"""Marketers merge customers, review duplicate suspicions and upload POS files; managers see runs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MARKETER_PERMS = {
    "customer": ["merge"],
    "duplicatesuspicion": ["view"],
    "mergerecord": ["view"],
    "identifieralias": ["view"],
    "importrun": ["view", "add"],
    "importissue": ["view"],
}
MANAGER_PERMS = {
    "importrun": ["view"],
    "importissue": ["view"],
}


def grant(apps, group_name, perms):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=group_name)
    codenames = [f"{action}_{model}" for model, actions in perms.items() for action in actions]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="customers", codename__in=codenames)
    )


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations; create ours now to grant them.
    app_config = apps.get_app_config("customers")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    grant(apps, "Marketers", MARKETER_PERMS)
    grant(apps, "Managers", MANAGER_PERMS)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_customer_merge_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
