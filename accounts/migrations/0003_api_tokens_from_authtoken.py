"""Each key DRF's authtoken kept in plain text becomes an ApiToken kept as its digest, and the
plain copy is deleted: scripts go on working with the key they have, and the database no
longer holds it. Going back makes no plain copies (there is nothing to make them from). The
digest and prefix are written out here as accounts/models.py makes them, so that this
migration stays what it was if that module changes."""

import hashlib

from django.db import migrations


def digests_from_plain_keys(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in Token.objects.all().iterator():
        made = ApiToken.objects.create(
            user_id=token.user_id, name="API token", digest=hashlib.sha256(token.key.encode()).hexdigest(),
            prefix=token.key[:6], made_by="profile",
        )
        ApiToken.objects.filter(pk=made.pk).update(created=token.created)  # auto_now_add set it to now
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_api_token"), ("authtoken", "0004_alter_tokenproxy_options")]

    operations = [migrations.RunPython(digests_from_plain_keys, migrations.RunPython.noop)]
