"""WSGI entry point, e.g. `gunicorn deepfake_site.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")

application = get_wsgi_application()
