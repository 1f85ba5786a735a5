import uuid

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("compute", "0008_compute_api_tags_access_destinations"),
    ]

    operations = [
        migrations.CreateModel(
            name="HostDrain",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("uuid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("host", models.CharField(db_index=True, max_length=255)),
                ("status", models.CharField(default="running", max_length=16)),
                ("reason", models.CharField(blank=True, default="", max_length=255)),
                ("requested_by", models.JSONField(default=dict)),
                ("request_id", models.CharField(blank=True, default="", max_length=64)),
                ("guests", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["-created_at", "-id"]},
        ),
        migrations.AddConstraint(
            model_name="hostdrain",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "running")),
                                               fields=("host",),
                                               name="one_running_drain_per_host"),
        ),
    ]
