"""`vodorigin serve`: run the origin with uvicorn. `vodorigin sign`: a signed URL path."""

from __future__ import annotations

import argparse
import os
import sys
import time

import uvicorn

from vodorigin.settings import ENV_PREFIX, SettingsError, load_settings
from vodorigin.web.app import CONFIG_ENVIRONMENT
from vodorigin.web.protect import sign_path
from vodorigin.web.server import raise_descriptor_limit, uvicorn_options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodorigin", description="Just-in-time VOD packaging origin")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", help="a TOML settings file (see configs/local.toml)")
    serve.add_argument("--media-root", help="directory of media files (storage = local)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    sign = commands.add_parser("sign", help="print a URL path with a token (url_signing_key)")
    sign.add_argument("path", help="e.g. /hls/movie.mp4/master.m3u8")
    sign.add_argument("--config", help="a TOML settings file holding url_signing_key")
    sign.add_argument("--expires-in", type=int, default=3600, help="seconds from now (default 3600)")
    args = parser.parse_args(argv)
    if args.command == "sign":
        _sign(args.path, args.config, args.expires_in)
        return
    overrides = {"media_root": args.media_root, "host": args.host, "port": args.port, "workers": args.workers}
    try:
        settings = load_settings(args.config, overrides)
    except SettingsError as error:
        sys.exit(f"vodorigin: {error}")
    # Workers load the settings again through the environment, so pass on what the flags said.
    if args.config:
        os.environ[CONFIG_ENVIRONMENT] = os.path.abspath(args.config)
    for name, value in overrides.items():
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    os.environ[ENV_PREFIX + "MEDIA_ROOT"] = str(settings.media_root_path)
    raise_descriptor_limit()
    uvicorn.run("vodorigin.web.app:app_from_environment", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level=settings.log_level,
                **uvicorn_options(settings))


def _sign(path: str, config: str | None, expires_in: int) -> None:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        sys.exit(f"vodorigin: {error}")
    if not settings.url_signing_key:
        sys.exit("vodorigin: url_signing_key is not set (config file or VODORIGIN_URL_SIGNING_KEY)")
    print(sign_path("/" + path.lstrip("/"), settings.url_signing_key, int(time.time()) + expires_in))
