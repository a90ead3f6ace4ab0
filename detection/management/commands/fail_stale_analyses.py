from django.core.management.base import BaseCommand

from detection.services import analysis_sweep


class Command(BaseCommand):
    help = (
        "Mark failed the analyses left running by a worker that died, and queue again (or "
        "fail) the queued analyses whose task was lost."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(str(analysis_sweep()))
