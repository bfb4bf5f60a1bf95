"""WSGI entry point: `gunicorn kefu.wsgi:app`."""

from kefu.app import create_app

app = create_app()
