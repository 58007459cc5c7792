"""Cheaper movement writes (the POS import and the nightly expiry post millions):

- the customer column references the customer's bonus account instead of the customer (on
  PostgreSQL): every writer has the account row locked already, while the check against the
  customer locked — and dirtied — the customer row for every movement;
- the idempotency key's uniqueness as a constraint, without the pattern-ops index unique=True
  adds; the created_by index only over the movements a person posted.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


ACCOUNT_FK = "bonus_mv_account_fk"


def account_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE loyalty_bonusmovement ADD CONSTRAINT {ACCOUNT_FK} "
            "FOREIGN KEY (customer_id) REFERENCES loyalty_bonusaccount (customer_id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )


def drop_account_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE loyalty_bonusmovement DROP CONSTRAINT {ACCOUNT_FK}")


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0009_purchase_order_number_condition'),
        ('loyalty', '0009_redeem_function'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='bonusmovement',
            name='created_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='posted by'),
        ),
        migrations.AlterField(
            model_name='bonusmovement',
            name='customer',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='bonus_movements', to='customers.customer', verbose_name='customer'),
        ),
        migrations.AlterField(
            model_name='bonusmovement',
            name='idempotency_key',
            field=models.CharField(max_length=120, verbose_name='idempotency key'),
        ),
        migrations.AddIndex(
            model_name='bonusmovement',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'], name='bonus_mv_created_by_idx'),
        ),
        migrations.AddConstraint(
            model_name='bonusmovement',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='bonus_mv_key_unique'),
        ),
        migrations.RunPython(account_fk, drop_account_fk),
    ]
