# vodorigin: slim Python image, non-root, health-checked.
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
ENV VODORIGIN_HOST=0.0.0.0 VODORIGIN_MEDIA_ROOT=/media
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
CMD ["vodorigin", "serve", "--config", "configs/local.toml", "--host", "0.0.0.0"]
