# The production-shaped image: web (gunicorn), worker and migrations share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEFU_DATA_DIR=/var/lib/kefu

WORKDIR /app
RUN useradd --system --home /var/lib/kefu --create-home kefu
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY tenants ./tenants
COPY migrations ./migrations
COPY admin_ui ./admin_ui
# Editable install: templates and migrations are read from /app.
RUN pip install --no-cache-dir -e .

USER kefu
EXPOSE 8000
CMD ["gunicorn", "kefu.wsgi:app", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
