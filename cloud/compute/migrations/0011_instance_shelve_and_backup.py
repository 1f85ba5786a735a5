from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("compute", "0010_quota_classes"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="shelved_image_id",
            field=models.CharField(blank=True, default="", max_length=36),
        ),
        migrations.AddField(
            model_name="instance",
            name="backup_rotation",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
