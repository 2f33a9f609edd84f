FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
# Production mode, so that the manifest (hashed names) the running portal needs is written. The key given here only
# lets settings load for this build step (collectstatic signs nothing); the container's environment supplies the
# real ones.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-step-only-not-the-runtime-key-0123456789abcdef AUDIT_KEY=build-step-only-not-the-runtime-key-0123456789abcdef python manage.py collectstatic --noinput
EXPOSE 8000
# The access log shows the path without its query string (%(U)s, not %(r)s) and no Referer: a consent callback's
# `state` must never reach a log.
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s %(H)s\" %(s)s %(b)s %(M)sms \"%(a)s\""]
