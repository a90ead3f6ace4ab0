from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from . import tasks

        post_spawn.connect(tasks.on_worker_start, dispatch_uid="detection_worker_start")
