# The boots waiting to be scheduled, oldest first (cloud/scheduler/batch.py takes them).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("compute", "0017_block_device_mappings"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="instance",
            index=models.Index(
                condition=models.Q(("deleted", False), ("host__isnull", True),
                                   ("task_state", "scheduling")),
                fields=["created_at"],
                name="instance_waiting_idx",
            ),
        ),
    ]
