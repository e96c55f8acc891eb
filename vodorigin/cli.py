"""`vodorigin serve`: run the origin with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from vodorigin.settings import ENV_PREFIX, SettingsError, load_settings
from vodorigin.web.app import CONFIG_ENVIRONMENT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vodorigin", description="Just-in-time VOD packaging origin")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", help="a TOML settings file (see configs/local.toml)")
    serve.add_argument("--media-root", help="directory of media files (storage = local)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
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
    uvicorn.run(
        "vodorigin.web.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_keep_alive=settings.keepalive_timeout,
        log_level=settings.log_level,
        server_header=False,
    )
