# vodorigin for production: slim Python image, non-root, health-checked, several uvicorn workers.
# Settings: configs/production.toml, then VODORIGIN_* variables (e.g. VODORIGIN_STORAGE=s3,
# VODORIGIN_S3_BUCKET, VODORIGIN_ORIGIN_SECRET). On EC2/ECS the S3 credentials come from the
# instance or task role (IMDSv2 / container credentials), refreshed without a restart.
#
# Memory (README: Running in a container): each worker holds up to metadata_cache_bytes +
# response_cache_bytes + upstream_block_cache_bytes, about 100 MB of its own and the requests in
# flight, plus allocator_retain_mib (64 MiB); with configs/production.toml's 4 workers, give the
# task 3.25 GiB.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# The pinned versions the tests passed with (constraints.txt: only what vodorigin needs is installed).
COPY pyproject.toml README.md constraints.txt ./
COPY vodorigin ./vodorigin
# The compiled kernels (README: Performance), built with a compiler that is removed again.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && cc -O2 -Wall -shared -fPIC -o vodorigin/mux/_ts_kernel.so vodorigin/mux/_ts_kernel.c \
    && cc -O2 -Wall -shared -fPIC -o vodorigin/mp4/_tables_kernel.so vodorigin/mp4/_tables_kernel.c \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN pip install -c constraints.txt . && useradd --system --uid 10001 --home /app vodorigin \
    && mkdir /media
COPY configs ./configs
# No media in the image: mount a folder over /media (storage = local), or set VODORIGIN_STORAGE=s3.
# An empty /media with local storage starts and answers 404; storage_check warns about S3 at start.

USER vodorigin
EXPOSE 8000
# /health never touches storage, so a slow upstream does not take the task out of service. The check
# asks the port the settings name (configs/production.toml, then VODORIGIN_PORT).
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["vodorigin", "health", "--config", "configs/production.toml"]
# SIGTERM (docker stop, ECS, Kubernetes) lets in-flight responses finish for shutdown_timeout (25 s
# in configs/production.toml), within the 30 s that ECS (stopTimeout) and Kubernetes
# (terminationGracePeriodSeconds) give by default; docker's own default is 10 s: docker run
# --stop-timeout 30 (compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM
CMD ["vodorigin", "serve", "--config", "configs/production.toml"]
