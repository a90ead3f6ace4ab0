"""django-q2's qcluster, refusing to start a worker that could not read the site's tasks, and
warning when it does not see the uploads the site stored."""

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
        problem = workers.storage_check()
        if problem:  # a warning, not a refusal: the web may be the one misconfigured
            self.stderr.write(self.style.WARNING(f"Warning: {problem}."))
        services.sweep_schedule_update()
        return super().handle(*args, **options)
