"""Allocation moves from the scheduler app to compute (claims are compute's resource accounting).

State only: the table `scheduler_allocation` stays where it is, with its rows."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("compute", "0005_console_tokens"),
        ("scheduler", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Allocation",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("vcpus", models.PositiveIntegerField()),
                        ("memory_mb", models.PositiveIntegerField()),
                        ("disk_gb", models.PositiveIntegerField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("instance", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="allocation", to="compute.instance")),
                        ("node", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="allocations", to="compute.computenode")),
                    ],
                    options={"db_table": "scheduler_allocation"},
                ),
            ],
            database_operations=[],
        ),
    ]
