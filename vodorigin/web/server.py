"""How the HTTP server runs the app: uvicorn (the default) with its HTTP protocol given a
request-head timeout, or granian (`server = "granian"`).

uvicorn's keep-alive timeout starts only after a response: a connection that never sends a
complete request head (opened and left idle, or fed a byte at a time) would be held forever, and
enough of them exhaust the process's file descriptors. `HeadTimeoutProtocol` closes a connection
whose request head is not complete `header_timeout` seconds after the connection opened or the
request began (nginx's client_header_timeout does the same). It also sends a response's head
and the start of its body in one write (`HeadWithBody`), and takes a range of an open file as a
body (`FileSpan`): it goes from the page cache to the socket with sendfile(2), never through
Python, as nginx sends a static file.

granian, a maintained ASGI server written in Rust, parses and writes HTTP off the Python thread;
small responses cost less there (README: Performance). It has one timer for a request head and
for an idle keep-alive connection (its header_read_timeout); it is set to the longer of
header_timeout and keepalive_timeout, so that a load balancer's idle connections stay open as
long as with uvicorn, and a silent connection is closed after that time.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
from typing import Any

import uvicorn
from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vodorigin.settings import Settings
from vodorigin.web.logs import logging_config

log = logging.getLogger("vodorigin")


class FileSpan:
    """`count` bytes of the open file `fd` from `offset`: a response body that the connection's
    transport (HeadWithBody) sends with sendfile(2), offered to the app as the scope extension
    FILE_SPAN. It stands for its bytes in uvicorn's request cycle, which counts a body with len()
    against the Content-Length and hands it to the transport's write().

    This is the ASGI zero-copy send extension ("http.response.zerocopy") in the shape uvicorn's
    cycle already carries: the standard message would need uvicorn's send wrapped for every
    request, and that wrapper (a closure holding the cycle that holds it) left each request's
    objects to the cyclic garbage collector, a sixth of a cached playlist's cost."""

    __slots__ = ("fd", "offset", "count")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd, self.offset, self.count = fd, offset, count

    def __len__(self) -> int:
        return self.count


FILE_SPAN = "vodorigin.file_span"  # the scope extension: the server takes FileSpan bodies
TIMER_SLACK = 0.05  # seconds a timer may fire early (uvloop's count whole milliseconds)


class HeadWithBody:
    """The connection's transport as uvicorn's request cycle sees it: a response's head is held
    until the first write of its body and both go out in one `writelines` (one writev in uvloop);
    a FileSpan body is sent from the file with sendfile(2).

    uvicorn writes the head and the body with two `transport.write` calls, each a send() of its
    own and a TCP segment of its own, where nginx sends both with one writev. For a playlist the
    second send was a tenth or more of the server's CPU per request (README: Performance).
    A held head is sent at the latest when its response completes or the connection is closed
    (`release`, `close`); an interim response ("100 Continue") is never held.
    """

    __slots__ = ("_transport", "_held", "_head_next", "socket_fd")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._head_next = True  # the next write starts a response
        # sendfile writes to the socket itself: only where the transport adds nothing to the bytes
        # (no TLS) and sits on a socket (uvloop's and asyncio's transports both say which)
        sock = transport.get_extra_info("socket")
        plain = sock is not None and transport.get_extra_info("ssl_object") is None
        self.socket_fd: int | None = sock.fileno() if plain else None

    def write(self, data: bytes | FileSpan) -> None:
        if isinstance(data, FileSpan):
            self._send_file(data)
        elif self._held is not None:
            self._transport.writelines((self._held, data))
            self._held = None
        elif self._head_next and not data.startswith(b"HTTP/1.1 1"):
            self._held = data
            self._head_next = False
        else:
            self._transport.write(data)

    def _send_file(self, span: FileSpan) -> None:
        """The span's bytes after what the transport holds: with sendfile(2) straight to the
        socket as far as its send buffer takes them, the rest read and written through the
        transport (which sends it as the socket drains, with flow control as any body)."""
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None
        sent = 0
        if (self.socket_fd is not None and not self._transport.get_write_buffer_size()
                and not self._transport.is_closing()):  # the socket is still the transport's
            try:  # nothing is queued ahead of these bytes: they may go to the socket directly
                while sent < span.count:
                    count = os.sendfile(self.socket_fd, span.fd, span.offset + sent, span.count - sent)
                    if not count:
                        break  # the file ends early: read below, and the connection closed
                    sent += count
            except BlockingIOError:
                pass  # the socket's buffer is full
            except (BrokenPipeError, ConnectionResetError):
                self._transport.abort()  # the client has gone: the transport tells the protocol
                return
            except OSError:  # sendfile refused for this pair (a file system without it, say):
                self.socket_fd = None  # this connection copies from now on
        if sent < span.count:
            rest = os.pread(span.fd, span.count - sent, span.offset + sent)
            self._transport.write(rest)
            if sent + len(rest) < span.count:  # the file was cut short since its size was taken:
                self._transport.close()  # the client sees a short body, never the next response

    def release(self) -> None:
        """A response is complete: send what is held; the next write is the next response's head."""
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None
        self._head_next = True

    def close(self) -> None:
        self.release()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's
        return getattr(self._transport, name)


class HeadTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes connections whose request head is late, writes a
    response's head with its body (HeadWithBody), and takes file ranges as bodies (FileSpan).

    A head is late `header_timeout` seconds after the connection opened (the first) or after its
    first byte came (the next ones). One timer per connection watches it, and is not set again per
    request: when it fires early for the head now awaited, it is set again for that head's time;
    when no head is awaited, it lapses until the next one begins. (A timer set and cancelled for
    every request left a cancelled timer per request in the event loop's heap for the timeout's
    length: tens of thousands at a few thousand requests a second.)"""

    header_timeout = 10.0  # set per server by protocol_for(), per worker process by process_protocol()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # flow control keeps the transport itself
        self.transport = HeadWithBody(transport)  # type: ignore[assignment]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = self.loop.time()  # when the head awaited began; None: none is
        self._watch_head(self._head_since + self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:
            self._head_since = self.loop.time()
            if self._head_timer is None:
                self._watch_head(self._head_since + self.header_timeout)

    def on_headers_complete(self) -> None:
        self._head_since = None
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle and self.transport.socket_fd is not None:  # type: ignore[attr-defined]
            # the request's cycle, made just now; its task runs the app from the next loop turn
            self.scope.setdefault("extensions", {})[FILE_SPAN] = {}  # type: ignore[typeddict-unknown-key]

    def on_response_complete(self) -> None:
        self.transport.release()  # type: ignore[attr-defined]
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _watch_head(self, when: float) -> None:
        """The timer, at loop time `when`."""
        self._head_timer = self.loop.call_at(when, self._head_check)

    def _head_check(self) -> None:
        self._head_timer = None
        if self._head_since is None:
            return  # no head awaited: the next one sets the timer
        deadline = self._head_since + self.header_timeout
        if self.loop.time() < deadline - TIMER_SLACK:
            self._watch_head(deadline)  # set for an earlier head: the one awaited now is not late yet
        elif self.cycle is not None and not self.cycle.response_complete:
            self._watch_head(self.loop.time() + self.header_timeout)  # a response is still being sent
        elif not self.transport.is_closing():
            self.transport.close()


def protocol_for(settings: Settings) -> type[HeadTimeoutProtocol]:
    """The protocol class with this server's header timeout."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"header_timeout": settings.header_timeout})


PROTOCOL_PATH = "vodorigin.web.server:HeadTimeoutProtocol"


def process_protocol(settings: Settings) -> None:
    """In a process `vodorigin serve` started (one server per process), the protocol uvicorn loads by
    name (PROTOCOL_PATH) takes its header timeout from the settings. Worker processes are started
    afresh and are handed the protocol by name: a class made by protocol_for() cannot be sent to them."""
    HeadTimeoutProtocol.header_timeout = settings.header_timeout


def uvicorn_options(settings: Settings, *, by_name: bool = False) -> dict[str, Any]:
    """The uvicorn.run / uvicorn.Config options every way of serving uses; `by_name` for
    `vodorigin serve`, whose app factory calls process_protocol()."""
    return {"http": PROTOCOL_PATH if by_name else protocol_for(settings),
            "timeout_keep_alive": settings.keepalive_timeout,
            "timeout_graceful_shutdown": settings.shutdown_timeout, "server_header": False,
            "access_log": False,  # web/observe.py writes a richer access log (access_log setting)
            "proxy_headers": False}  # the client address: trusted_proxies (web/observe.py), not uvicorn's


APP_FACTORY = "vodorigin.web.app:app_from_environment"


def run_server(settings: Settings) -> None:
    """Run the app factory under the chosen server until it is told to stop (SIGTERM/SIGINT)."""
    if settings.server == "granian":
        # Workers started afresh, as uvicorn's are, not forked from this process: each imports the
        # app and its libraries under the environment set for it (prometheus-client reads its
        # multiprocess folder at import), and inherits no threads or open state from here.
        multiprocessing.set_start_method("spawn", force=True)
        granian_server(settings).serve()
        return
    uvicorn.run(APP_FACTORY, factory=True, host=settings.host, port=settings.port, workers=settings.workers,
                log_level=settings.log_level, **uvicorn_options(settings, by_name=True))


def granian_server(settings: Settings, factory: str = APP_FACTORY) -> Any:  # granian.Granian, an alias
    """granian serving an app factory ("module:function") over HTTP/1.1 with the settings'
    timeouts and workers."""
    idle = max(settings.header_timeout, settings.keepalive_timeout)
    return Granian(factory, address=settings.host, port=settings.port, interface=Interfaces.ASGI,
                   factory=True, workers=settings.workers, loop=Loops.uvloop, http=HTTPModes.http1,
                   websockets=False, http1_settings=HTTP1Settings(header_read_timeout=int(idle * 1000)),
                   log_level=LogLevels(settings.log_level), log_access=False,
                   log_dictconfig=logging_config(settings.log_format, settings.log_level),
                   workers_kill_timeout=settings.shutdown_timeout)


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard limit (as nginx's worker_rlimit_nofile does):
    every connection and open media file takes one. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            log.warning("could not raise the open file limit from %d", soft)
    return soft
