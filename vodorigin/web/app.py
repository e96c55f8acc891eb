"""The FastAPI application: one route per protocol, errors mapped to statuses in one place."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vodorigin import __version__
from vodorigin.errors import VodError
from vodorigin.origin import Origin
from vodorigin.packagers import dash, hls, pd
from vodorigin.packagers.output import Output, PackagerContext
from vodorigin.settings import Settings, load_settings
from vodorigin.storage.factory import storage_for
from vodorigin.urls import MediaRequest, parse_request_path
from vodorigin.web.cors import CorsMiddleware
from vodorigin.web.responses import build_response, error_response

log = logging.getLogger("vodorigin")
CONFIG_ENVIRONMENT = "VODORIGIN_CONFIG_FILE"

Handler = Callable[[MediaRequest, Origin, PackagerContext], Awaitable[Output]]


async def serve_hls(request: MediaRequest, origin: Origin, context: PackagerContext) -> Output:
    return hls.handle(request.file_name, await origin.media_set(request), context)


async def serve_dash(request: MediaRequest, origin: Origin, context: PackagerContext) -> Output:
    return dash.handle(request.file_name, await origin.media_set(request), context)


async def serve_pd(request: MediaRequest, origin: Origin, context: PackagerContext) -> Output:
    if request.clip.start_ms or request.clip.end_ms is not None or not request.tracks.empty:
        return pd.clipped_file(await origin.media_set(request), context)
    return pd.whole_file(await origin.storage.stat(request.files[0]))


PROTOCOL_HANDLERS: dict[str, Handler] = {"hls": serve_hls, "dash": serve_dash, "pd": serve_pd}


def create_app(settings: Settings) -> FastAPI:
    origin = Origin(settings, storage_for(settings))
    context = PackagerContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await origin.storage.close()

    app = FastAPI(title="vodorigin", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.origin = origin
    app.add_middleware(CorsMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths (404) and methods (405) answer in the same form as our own errors."""
        error = VodError(str(exc.detail))
        error.status = exc.status_code
        response = error_response(error)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(VodError("internal error"))

    @app.get("/health")
    async def health() -> Response:
        return Response(b"ok\n", media_type="text/plain", headers={"cache-control": "no-store"})

    for protocol, handler in PROTOCOL_HANDLERS.items():
        app.add_api_route(f"/{protocol}/{{path:path}}", _endpoint(protocol, handler, origin, context),
                          methods=["GET", "HEAD"], name=protocol)
    return app


def _endpoint(protocol: str, handler: Handler, origin: Origin, context: PackagerContext
              ) -> Callable[[Request, str], Awaitable[Response]]:
    async def endpoint(request: Request, path: str) -> Response:
        try:
            media_request = parse_request_path(protocol, path, origin.settings.max_urlset_parts)
            output = await handler(media_request, origin, context)
            return await build_response(output, origin, request.method, request.headers.get("range"),
                                        request.url.path)
        except VodError as error:
            log.info("%s %s -> %d %s", request.method, request.url.path, error.status, error.message)
            return error_response(error)

    return endpoint


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings from VODORIGIN_CONFIG_FILE and VODORIGIN_* variables."""
    settings = load_settings(os.environ.get(CONFIG_ENVIRONMENT))
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    return create_app(settings)
