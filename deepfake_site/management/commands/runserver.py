"""runserver, refusing to listen beyond this machine with DEBUG on."""

from django.conf import settings
from django.core.management.base import CommandError
from whitenoise.runserver_nostatic.management.commands.runserver import (
    Command as RunserverCommand,
)

from deepfake_site.safety import debug_bind_refusal


class Command(RunserverCommand):
    def run(self, **options):
        refusal = debug_bind_refusal(debug=settings.DEBUG, hosts=[self.addr])
        if refusal:
            raise CommandError(refusal)
        return super().run(**options)
