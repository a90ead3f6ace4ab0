"""One account per e-mail address, whatever its case, enforced by the database itself: the
sign-up form's check alone let parallel sign-ups through. Empty addresses (accounts made with
createsuperuser) are not constrained."""

from django.db import migrations

INDEX = "accounts_user_email_ci_unique"


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(email)) WHERE email <> ''",
            f"DROP INDEX {INDEX}",
        )
    ]
