from django.apps import AppConfig
from django.conf import settings


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection"

    def ready(self) -> None:
        from django_q.conf import Conf
        from django_q.signals import post_spawn

        from . import tasks

        # django-q2 signs its pickled messages with SECRET_KEY; ours have their own key.
        Conf.SECRET_KEY = settings.QUEUE_SECRET_KEY
        post_spawn.connect(tasks.on_worker_start, dispatch_uid="detection_worker_start")
