"""The FastAPI application: one route per protocol, errors mapped to statuses in one place.

A media request goes: protection (web/protect.py) -> parse the URL -> stat its sources -> 304 if
the client's copy is current -> the response cache, keyed on the URL and the sources' identities
-> the packager -> the response (web/responses.py). Around it all, web/observe.py logs and counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vodorigin import __version__
from vodorigin.allocator import retain_freed_memory
from vodorigin.cache import CachedResponse, ResponseCache
from vodorigin.drm.source import KeySource
from vodorigin.errors import MediaError, Unauthorized, VodError
from vodorigin.mapping import urlset
from vodorigin.mapping.source import MappingSource
from vodorigin.media.model import MediaSet, Movie, SourceIdentity
from vodorigin.media.subtitles import CuesNeeded
from vodorigin.origin import Origin
from vodorigin.packagers import dash, hds, hls, mss, pd
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.settings import Settings, load_settings
from vodorigin.storage.factory import storage_for
from vodorigin.urls import MediaRequest, check_url_path, parsed_request
from vodorigin.web.http_cache import (
    HttpPolicy,
    accepts_gzip,
    compress,
    compressible,
    file_class,
    request_class,
)
from vodorigin.web.logs import configure_logging
from vodorigin.web.observe import ObserveMiddleware, Observer
from vodorigin.web.offload import Offload
from vodorigin.web.player import player_router
from vodorigin.web.protect import ProtectionMiddleware
from vodorigin.web.purge import PURGE_LOG_ENVIRONMENT, Purger, authorized, normalized
from vodorigin.web.responses import Content, MediaResponder, error_response, refused, render, request_headers
from vodorigin.web.server import process_protocol

log = logging.getLogger("vodorigin")
CONFIG_ENVIRONMENT = "VODORIGIN_CONFIG_FILE"
LARGE_BODY = 256 * 1024  # manifests longer than this are gzipped off the event loop
# Faults no media should cause, but which hostile input might still reach: a 422 with a log line
# (the fuzz tests treat them as bugs), never a 500.
PACKAGING_FAULTS = (struct.error, ArithmeticError, LookupError, ValueError)

Sources = tuple[SourceIdentity, ...]
Handler = Callable[[MediaRequest, Sources, Origin, PackagerContext], Awaitable[Output]]
Endpoint = Callable[[Scope, str], Awaitable[ASGIApp]]  # (scope, path after /<protocol>/) -> response


def packaged(handle: Callable[[str, MediaSet, PackagerContext], Output],
             timing_only: Callable[[str], bool] = lambda file_name: False) -> Handler:
    """The handler of a packager: its file name, on the media set the request names. Large media
    sets are packaged in a worker thread while that costs less than it saves (web/offload.py).
    The files `timing_only` names need nothing of a movie but its tracks' timing (Origin.movie_of)."""
    offload = Offload()

    async def serve(request: MediaRequest, sources: Sources, origin: Origin, context: PackagerContext
                    ) -> Output:
        timing = timing_only(request.file_name)
        movies = await origin.movies(sources, timing)
        try:
            return await _package(handle, request, movies, origin, context, offload)
        except CuesNeeded:  # a subtitle segment of an embedded track: read its samples, then again
            movies = await origin.with_cues(await origin.movies(sources) if timing else movies)
            return await _package(handle, request, movies, origin, context, offload)

    return serve


async def _package(handle: Callable[[str, MediaSet, PackagerContext], Output], request: MediaRequest,
                   movies: list[Movie], origin: Origin, context: PackagerContext, offload: Offload
                   ) -> Output:
    media = origin.check_size(urlset.media_set(request, {m.source.path: m for m in movies}))
    manifest = file_class(request.file_name) == "manifest"  # walks every sample, a segment its own
    return await offload.run(lambda: handle(request.file_name, media, context), request, media, movies,
                             manifest)


async def serve_pd(request: MediaRequest, sources: Sources, origin: Origin, context: PackagerContext
                   ) -> Output:
    if request.clip.start_ms or request.clip.end_ms is not None or not request.parts[0].tracks.empty:
        movies = {m.source.path: m for m in await origin.movies(sources)}
        return pd.clipped_file(urlset.media_set(request, movies), context)
    return pd.whole_file(sources[0])


PROTOCOL_HANDLERS: dict[str, Handler] = {"hls": packaged(hls.handle, hls.timing_only),
                                         "dash": packaged(dash.handle), "hds": packaged(hds.handle),
                                         "mss": packaged(mss.handle), "pd": serve_pd}
MEDIA_PREFIXES = tuple(f"/{protocol}/" for protocol in PROTOCOL_HANDLERS)


@dataclass(frozen=True, slots=True)
class Services:
    """What the endpoint of one protocol uses: the shared origin and response cache, and the
    packaging and HTTP settings of its protocol (settings.for_protocol)."""

    origin: Origin
    context: PackagerContext
    policy: HttpPolicy
    responses: ResponseCache
    cache_segments: bool
    mappings: MappingSource | None  # mapped mode
    keys: KeySource | None  # encryption
    purger: Purger


class OriginApp(FastAPI):
    """The FastAPI app, with media requests taken straight to their endpoint.

    /hls/, /dash/, /hds/, /mss/ and /pd/ are most of the traffic; FastAPI's routing, request
    handler and dependency solving cost more than a cached playlist itself (issue 17, README:
    Performance). HTTP requests pass the same observation, CORS and protection middlewares
    (`fronts`), then media paths go to a dispatch on their first component and everything else
    (health, status, metrics, purge, the player page) to FastAPI's routes; lifespan events too."""

    fronts: tuple[ASGIApp, ASGIApp] | None = None  # (media, routes), set by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.fronts is None:
            await super().__call__(scope, receive, send)
        elif scope["path"].startswith(MEDIA_PREFIXES):
            await self.fronts[0](scope, receive, send)
        else:
            await self.fronts[1](scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI itself (its routes, middleware and exception handlers)."""
        await super().__call__(scope, receive, send)


class MediaDispatch:
    """/<protocol>/<path> to the protocol's endpoint, as a route would (405 for other methods)."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protocol = scope["path"][1:].partition("/")[0]
        response: ASGIApp
        if scope["method"] not in ("GET", "HEAD"):
            error = VodError("Method Not Allowed")
            error.status = 405
            response = error_response(error)
            response.headers["allow"] = "GET, HEAD"
        else:
            path = scope["path"][len(protocol) + 2 :]
            try:
                response = await self.endpoints[protocol](scope, path)
            except Exception:
                log.exception("unexpected error on %s", scope["path"])
                response = error_response(VodError("internal error"))
        await response(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    retain_freed_memory(settings.allocator_retain_mib)  # in each worker process (allocator.py)
    origin = Origin(settings, storage_for(settings))
    responses = ResponseCache(settings.response_cache_bytes, settings.response_cache_ttl)
    observer = Observer(origin, responses)
    mappings = MappingSource(settings, origin.storage) if settings.mode == "mapped" else None
    views = {protocol: settings.for_protocol(protocol) for protocol in PROTOCOL_HANDLERS}
    encrypting = any(PackagerContext.from_settings(view).encrypts(p) for p, view in views.items())
    keys = KeySource(settings) if encrypting else None
    purger = Purger(lambda: _purgeable(origin, responses, mappings, keys),
                    os.environ.get(PURGE_LOG_ENVIRONMENT))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await origin.storage.close()
        observer.close()
        if mappings is not None:
            await mappings.close()
        if keys is not None:
            await keys.close()

    app = OriginApp(title="vodorigin", version=__version__, docs_url=None, redoc_url=None,
                    openapi_url=None, lifespan=lifespan)
    app.state.origin = origin
    app.state.observer = observer

    def wrapped(inner: ASGIApp) -> ASGIApp:
        """front(protect(inner)): around FastAPI's routes and the media dispatch alike (without
        protect when neither a CDN secret nor a URL signing key is set); the front observes and
        applies CORS (web/observe.py)."""
        protected = inner if not (settings.origin_secret or settings.url_signing_key) else \
            ProtectionMiddleware(inner, secret_header=settings.origin_secret_header,
                                 secret=settings.origin_secret, signing_key=settings.url_signing_key)
        return ObserveMiddleware(protected, observer=observer,
                                 log_requests=settings.access_log, trusted_proxies=settings.trusted_proxies)

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
        """For the load balancer: cheap, never touches storage."""
        return Response(b"ok\n", media_type="text/plain", headers={"cache-control": "no-store"})

    @app.get("/status")
    async def status() -> Response:
        return JSONResponse(observer.status(), headers={"cache-control": "no-store"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(observer.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8",
                        headers={"cache-control": "no-store"})

    if settings.purge_key:
        @app.post("/purge/{target:path}")
        async def purge(request: Request, target: str) -> Response:
            """Drop what is kept for a media path and below it ("" for everything): web/purge.py."""
            if not authorized(request.headers.get("authorization"), settings.purge_key):
                response = error_response(Unauthorized("purging needs Authorization: Bearer <purge_key>"))
                response.headers["www-authenticate"] = 'Bearer realm="vodorigin purge"'
                return response
            target = normalized(target)
            dropped = purger.purge(target)
            return JSONResponse({"purged": target or "*", "entries": dropped},
                                headers={"cache-control": "no-store"})

    if settings.player_page:
        app.include_router(player_router(settings))
    endpoints = {}
    for protocol, handler in PROTOCOL_HANDLERS.items():
        view = views[protocol]
        services = Services(origin, PackagerContext.from_settings(view), HttpPolicy.from_settings(view),
                            responses, settings.response_cache_segments, mappings, keys, purger)
        endpoints[protocol] = _endpoint(protocol, handler, services)
    app.fronts = (wrapped(MediaDispatch(endpoints)), wrapped(app.framework))
    return app


def _endpoint(protocol: str, handler: Handler, services: Services) -> Endpoint:
    origin = services.origin

    async def endpoint(scope: Scope, path: str) -> ASGIApp:
        services.purger.catch_up()  # purges other workers answered (several workers only)
        state = scope.setdefault("state", {})
        method, url_path = scope["method"], scope["path"]
        try:
            check_url_path(url_path, scope.get("raw_path") or b"")
            media_request = parsed_request(protocol, path, origin.settings.max_urlset_parts)
            mappings: tuple[SourceIdentity, ...] = ()
            if services.mappings is not None and protocol != "pd":
                media_request, mappings = await services.mappings.resolve(media_request)
            sources = await origin.sources(media_request.files)
            context, keys = await _with_keys(protocol, services, sources)
            mappings += keys
            kind = request_class(url_path)
            text = compressible(url_path)
            headers = request_headers(scope["headers"])
            responder = MediaResponder(services.policy, kind, sources + mappings, url_path, headers, text)
            if (not_modified := responder.not_modified()) is not None:
                state["cache"] = "not-modified"
                return not_modified
            key = (url_path, sources + mappings)
            content: Content | None = services.responses.get(key) if kind != "progressive" else None
            state["cache"] = "hit" if content is not None else "-"  # "-": not a cacheable response
            if content is None:
                gzip = services.responses.max_bytes > 0 or accepts_gzip(headers.get("accept-encoding"))
                content = await _build(await handler(media_request, sources, origin, context),
                                       text and gzip, method, services)
                if isinstance(content, CachedResponse):
                    services.responses.put(key, content)
                    state["cache"] = "miss"
            return await responder.respond(content, origin, method)
        except VodError as error:
            return refused(method, url_path, error)
        except PACKAGING_FAULTS as fault:
            log.error("%s %s -> 422 packaging fault", method, url_path, exc_info=True)
            return error_response(MediaError(f"the media could not be packaged ({type(fault).__name__})"))

    return endpoint


def _purgeable(origin: Origin, responses: ResponseCache, mappings: MappingSource | None,
               keys: KeySource | None) -> list[Any]:
    """Every cache a purge goes through (web/purge.py)."""
    caches: list[Any] = [origin.metadata, origin.refusals, responses]
    blocks = getattr(origin.storage, "blocks", None)
    if blocks is not None:
        caches.append(blocks)
    if mappings is not None:
        caches.append(mappings.cache)
    if keys is not None:
        caches.append(keys.cache)
    return caches


async def _with_keys(protocol: str, services: Services, sources: Sources
                     ) -> tuple[PackagerContext, tuple[SourceIdentity, ...]]:
    """The packaging context with the content keys of the request's files when its protocol
    encrypts, and an identity per key (part of the validators and cache keys, as a changed key
    changes the bytes)."""
    context = services.context
    if services.keys is None or not context.encrypts(protocol):
        return context, ()
    keys = await services.keys.keys((source.path for source in sources), context.drm_enabled)
    identities = tuple(SourceIdentity(f"key:{path}", 16, 0.0, file_keys.identity)
                       for path, file_keys in keys.items())
    return replace(context, keys=keys), identities


async def _build(output: Output, gzip: bool, method: str, services: Services) -> Content:
    """A packager's output as response content: documents (and, when configured, rendered segments)
    become cacheable bodies, manifests and WebVTT with their gzip form when `gzip` (a text response
    that the cache keeps, or that this client takes gzipped); the rest stays lazy."""
    if isinstance(output, Document):
        gzipped = None
        if gzip and services.policy.gzip_manifests:
            kept = services.responses.max_bytes > 0
            large = len(output.body) > LARGE_BODY
            gzipped = await asyncio.to_thread(compress, output.body, kept) if large \
                else compress(output.body, kept)
        return CachedResponse(output.body, output.content_type, gzipped)
    if isinstance(output, MediaSegment) and services.cache_segments and method == "GET":
        return CachedResponse(await render(output, services.origin), output.content_type)
    return output


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings from VODORIGIN_CONFIG_FILE and VODORIGIN_* variables."""
    settings = load_settings(os.environ.get(CONFIG_ENVIRONMENT))
    configure_logging(settings.log_format, settings.log_level)
    process_protocol(settings)
    return create_app(settings)
