"""The folded name (the history's search key) of every analysis made before there was one.

Outside a transaction, 1,000 rows at a time, so a big table is never locked whole while workers
save their analyses; it fills only empty keys, so running it again finishes what it began. Rows
saved meanwhile by code older than the field keep an empty key: the search also matches those
by their plain name (detection/selectors.py)."""

import unicodedata

from django.db import migrations


def fold(text: str) -> str:
    """detection.models.name_folded as it was, written out here so this migration never changes."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).casefold())


def fold_existing_names(apps, schema_editor):
    Analysis = apps.get_model("detection", "Analysis")
    last = None
    while True:
        rows = Analysis.objects.filter(name_folded="").order_by("pk")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows.values_list("pk", "original_name")[:1000])  # read before writing: SQLite
        if not batch:
            return
        Analysis.objects.bulk_update([Analysis(pk=pk, name_folded=fold(name)) for pk, name in batch], ["name_folded"])
        last = batch[-1][0]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("detection", "0009_name_folded"),
    ]

    operations = [
        migrations.RunPython(fold_existing_names, migrations.RunPython.noop),
    ]
