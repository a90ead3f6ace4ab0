from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("detection", "0008_media_type_photo"),
    ]

    operations = [
        migrations.AddField(
            model_name="analysis",
            name="name_folded",
            field=models.TextField(blank=True, editable=False),
        ),
    ]
