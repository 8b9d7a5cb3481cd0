"""WSGI entry point of the peer shop: ``gunicorn peershop.wsgi:application`` (from bench/peer)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peershop.settings")
application = get_wsgi_application()
