# vodorigin for production: slim Python image, non-root, health-checked, several uvicorn workers.
# Settings: configs/production.toml, then VODORIGIN_* variables (e.g. VODORIGIN_STORAGE=s3,
# VODORIGIN_S3_BUCKET, VODORIGIN_ORIGIN_SECRET). On EC2/ECS the S3 credentials come from the
# instance or task role (IMDSv2 / container credentials), refreshed without a restart.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY vodorigin ./vodorigin
COPY configs ./configs
RUN pip install . && useradd --system --uid 10001 --home /app vodorigin
# The fixtures make the image serve something out of the box; mount real media over /media.
COPY fixtures /media

USER vodorigin
EXPOSE 8000
# /health never touches storage, so a slow upstream does not take the task out of service.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
# SIGTERM (docker stop, ECS) lets in-flight responses finish for shutdown_timeout seconds;
# give the container at least that long (docker stop -t 35, ECS stopTimeout 35).
STOPSIGNAL SIGTERM
CMD ["vodorigin", "serve", "--config", "configs/production.toml"]
