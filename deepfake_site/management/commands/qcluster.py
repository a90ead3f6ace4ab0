"""django-q2's qcluster, refusing to start a worker on a database not migrated for its code or
that could not read the site's tasks, warning when it does not see the uploads the site
stored, and with its task queue watched for a worker that died holding it (detection/
queue_lock.py)."""

import django_q.cluster
from django.core.management.base import CommandError
from django_q.management.commands.qcluster import Command as QclusterCommand

from deepfake_site.safety import migrations_missing
from detection import services, workers
from detection.queue_lock import WatchedSentinel


class Command(QclusterCommand):
    help = (
        "Starts a Django Q cluster, after checking that its queue key matches the site's and "
        "scheduling the sweep for lost analyses."
    )

    def handle(self, *args, **options):
        missing = migrations_missing()
        if missing:  # refused: its analyses wait in the queue instead of failing one by one
            raise CommandError(
                f"The database lacks {len(missing)} migration{'s' if len(missing) != 1 else ''} this code "
                f"needs ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): run `manage.py "
                "migrate` first. Until then uploads wait in the queue."
            )
        try:
            workers.queue_key_check()
        except workers.QueueKeyMismatch as exc:
            raise CommandError(str(exc)) from None
        problem = workers.storage_check()
        if problem:  # a warning, not a refusal: the web may be the one misconfigured
            self.stderr.write(self.style.WARNING(f"Warning: {problem}."))
        services.sweep_schedule_update()
        django_q.cluster.Sentinel = WatchedSentinel  # what django-q2's Cluster.start runs
        return super().handle(*args, **options)
