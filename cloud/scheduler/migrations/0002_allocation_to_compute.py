"""Allocation now belongs to compute (compute 0006); the table stays, only the state moves."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("scheduler", "0001_initial"),
        ("compute", "0006_allocation_from_scheduler"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Allocation")],
            database_operations=[],
        ),
    ]
