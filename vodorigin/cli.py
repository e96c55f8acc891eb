"""`vodorigin serve`: run the origin (uvicorn, or granian). `vodorigin sign`: a signed URL path."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from vodorigin import __version__
from vodorigin.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from vodorigin.storage.factory import probe_storage
from vodorigin.web.app import CONFIG_ENVIRONMENT
from vodorigin.web.observe import MULTIPROCESS
from vodorigin.web.protect import sign_path
from vodorigin.web.purge import PURGE_LOG_ENVIRONMENT
from vodorigin.web.server import raise_descriptor_limit, run_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodorigin", description="Just-in-time VOD packaging origin")
    parser.add_argument("--version", action="version", version=f"vodorigin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server",
                                description="Settings: the config file, then VODORIGIN_<NAME> variables, "
                                            "then these flags (later wins).")
    serve.add_argument("--config", help="a TOML settings file (see configs/local.toml)")
    serve.add_argument("--media-root", help="directory of media files (storage = local), relative to the "
                                            "working directory")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--server", choices=["uvicorn", "granian"], help="the HTTP server (default uvicorn)")
    sign = commands.add_parser("sign", help="print a URL path with a token (url_signing_key)")
    sign.add_argument("path", help="e.g. /hls/movie.mp4/master.m3u8")
    sign.add_argument("--config", help="a TOML settings file holding url_signing_key")
    sign.add_argument("--expires-in", type=_positive, default=3600,
                      help="seconds from now the token stays valid (default 3600)")
    health = commands.add_parser("health", help="exit 0 when the server of these settings answers /health "
                                                "(the container health check)")
    health.add_argument("--config", help="the TOML settings file the server runs with")
    args = parser.parse_args(argv)
    if args.command == "sign":
        _sign(args.path, args.config, args.expires_in)
        return
    if args.command == "health":
        sys.exit(_health(args.config))
    overrides = {"media_root": args.media_root, "host": args.host, "port": args.port, "workers": args.workers,
                 "server": args.server}
    try:
        settings = load_settings(args.config, overrides)
        check_storage(settings)
    except SettingsError as error:
        sys.exit(f"vodorigin: {error}")
    # Workers load the settings again through the environment, so pass on what the flags said.
    if args.config:
        os.environ[CONFIG_ENVIRONMENT] = os.path.abspath(args.config)
    for name, value in overrides.items():
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    os.environ[ENV_PREFIX + "MEDIA_ROOT"] = str(settings.media_root_path)
    descriptors = raise_descriptor_limit()
    print(startup_line(settings, args.config, descriptors), file=sys.stderr, flush=True)
    with shared_state(settings.workers):
        run_server(settings)


@contextlib.contextmanager
def shared_state(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder for what they share, removed at exit: their metrics,
    so that /metrics adds them all up whichever worker answers (prometheus-client's multiprocess
    mode; a PROMETHEUS_MULTIPROC_DIR already set is the operator's and is used as it is), and the
    purge log that carries a purge to every worker (web/purge.py)."""
    if workers <= 1:
        yield
        return
    folder = tempfile.mkdtemp(prefix="vodorigin-shared-")
    shared = {PURGE_LOG_ENVIRONMENT: os.path.join(folder, "purge.log")}
    if not os.environ.get(MULTIPROCESS):
        shared[MULTIPROCESS] = os.path.join(folder, "metrics")
        os.mkdir(shared[MULTIPROCESS])
    os.environ.update(shared)
    try:
        yield
    finally:
        for name in shared:
            del os.environ[name]
        shutil.rmtree(folder, ignore_errors=True)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value}: must be a positive number of seconds")
    return value


def check_storage(settings: Settings) -> None:
    """Storage the server cannot read is a mistake to say at once, not 404s or 502s for everything.
    A local media root must exist. S3 buckets and an HTTP upstream are tried once (storage_check):
    a problem is a warning on stderr, or with "fatal" stops the server."""
    if settings.storage == "local" and not settings.media_root_path.is_dir():
        raise SettingsError(f"media_root {settings.media_root_path} is not a directory")
    if settings.storage == "local" or settings.storage_check == "off":
        return
    problem = asyncio.run(probe_storage(settings))
    if problem is None:
        return
    if settings.storage_check == "fatal":
        raise SettingsError(f"storage check failed: {problem}")
    print(f"vodorigin: WARNING: storage check failed: {problem} (serving anyway; "
          f"storage_check = \"fatal\" stops the server instead)", file=sys.stderr, flush=True)


def startup_line(settings: Settings, config: str | None, descriptors: int) -> str:
    """One line saying what this server is, what it serves from and where to look."""
    source = {"local": f"local {settings.media_root_path}", "http": f"http {settings.http_base_url}",
              "s3": f"s3 {settings.s3_bucket or ', '.join(settings.s3_buckets.values())}"}[settings.storage]
    if settings.mode == "mapped":
        source += f", mappings from {settings.mapping_url or 'JSON files in the storage'}"
    base = f"http://{settings.host}:{settings.port}"
    player = f", player {base}/player/" if settings.player_page else ""
    return (f"vodorigin {__version__}: config {os.path.abspath(config) if config else '(defaults)'}, "
            f"storage {source}, {settings.workers} worker(s) on {base}{player}, open files {descriptors}")


def _health(config: str | None) -> int:
    """0 when /health answers on the port the settings (file, then environment) name, else 1: the
    check then follows VODORIGIN_PORT wherever the server was moved. A server listening on every
    address is asked on 127.0.0.1."""
    try:
        settings = load_settings(config)
    except SettingsError as error:
        print(f"vodorigin: {error}", file=sys.stderr)
        return 1
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"vodorigin: {url}: {error}", file=sys.stderr)
        return 1


def _sign(path: str, config: str | None, expires_in: int) -> None:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        sys.exit(f"vodorigin: {error}")
    if not settings.url_signing_key:
        sys.exit("vodorigin: url_signing_key is not set (config file or VODORIGIN_URL_SIGNING_KEY)")
    print(sign_path("/" + path.lstrip("/"), settings.url_signing_key, int(time.time()) + expires_in))
