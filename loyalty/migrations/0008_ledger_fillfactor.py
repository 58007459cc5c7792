"""Room on each page of the ledger tables, so the updates they live by stay HOT (no index
entry written): accounts change on every movement, and each credit's unspent part changes when
a redemption or the expiry takes from it (no index covers `remaining`)."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_bonusaccount SET (fillfactor = 80)")
        schema_editor.execute("ALTER TABLE loyalty_bonusmovement SET (fillfactor = 90)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_bonusaccount RESET (fillfactor)")
        schema_editor.execute("ALTER TABLE loyalty_bonusmovement RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_drop_lot_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
