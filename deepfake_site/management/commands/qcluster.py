"""django-q2's qcluster, refusing to start a worker that could not read the site's tasks."""

from django.core.management.base import CommandError
from django_q.management.commands.qcluster import Command as QclusterCommand

from detection import services, workers


class Command(QclusterCommand):
    help = (
        "Starts a Django Q cluster, after checking that its queue key matches the site's and "
        "scheduling the sweep for lost analyses."
    )

    def handle(self, *args, **options):
        try:
            workers.queue_key_check()
        except workers.QueueKeyMismatch as exc:
            raise CommandError(str(exc)) from None
        services.sweep_schedule_update()
        return super().handle(*args, **options)
