from django.core.management.base import BaseCommand

from detection.services import analysis_fail_stale


class Command(BaseCommand):
    help = "Mark failed the analyses left running by a worker that died."

    def handle(self, *args, **options) -> None:
        failed = analysis_fail_stale()
        self.stdout.write(f"{failed} stale analyses marked failed")
