import unicodedata

from django.db import migrations, models


def fold_existing_names(apps, schema_editor):
    """The folded name of every analysis made before the field (the same folding as
    detection.models.name_folded, written out here so this migration never changes)."""
    Analysis = apps.get_model("detection", "Analysis")
    names = list(Analysis.objects.values_list("pk", "original_name"))  # read first: SQLite
    folded = [Analysis(pk=pk, name_folded=unicodedata.normalize("NFKC", name.casefold())) for pk, name in names]
    Analysis.objects.bulk_update(folded, ["name_folded"], batch_size=500)


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
        migrations.RunPython(fold_existing_names, migrations.RunPython.noop),
    ]
