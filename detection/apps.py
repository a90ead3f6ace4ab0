from django.apps import AppConfig
from django.conf import settings


def _analysis_deleted(sender, instance, **kwargs) -> None:
    from . import services

    services.analysis_files_delete(analysis=instance)


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection"

    def ready(self) -> None:
        from django_q.conf import Conf
        from django.db.models.signals import post_delete
        from django_q.signals import post_spawn

        from . import tasks

        # django-q2 signs its pickled messages with SECRET_KEY; ours have their own key.
        Conf.SECRET_KEY = settings.QUEUE_SECRET_KEY
        post_spawn.connect(tasks.on_worker_start, dispatch_uid="detection_worker_start")
        # Files go with their row, however it is deleted (a user deleted with their analyses too).
        post_delete.connect(_analysis_deleted, sender=self.get_model("Analysis"), dispatch_uid="detection_analysis_files")
