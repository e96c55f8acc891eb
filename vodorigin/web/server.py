"""How the HTTP server runs the app: uvicorn (the default) with its HTTP protocol given a
request-head timeout, or granian (`server = "granian"`).

uvicorn's keep-alive timeout starts only after a response: a connection that never sends a
complete request head (opened and left idle, or fed a byte at a time) would be held forever, and
enough of them exhaust the process's file descriptors. `HeadTimeoutProtocol` closes a connection
whose request head is not complete `header_timeout` seconds after the connection opened or the
request began (nginx's client_header_timeout does the same). It also sends a response's head
and the start of its body in one write (`HeadWithBody`).

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


class HeadWithBody:
    """The connection's transport as uvicorn's request cycle sees it: a response's head is held
    until the first write of its body and both go out in one `writelines` (one writev in uvloop).

    uvicorn writes the head and the body with two `transport.write` calls, each a send() of its
    own and a TCP segment of its own, where nginx sends both with one writev. For a playlist the
    second send was a tenth or more of the server's CPU per request (README: Performance).
    A held head is sent at the latest when its response completes or the connection is closed
    (`release`, `close`); an interim response ("100 Continue") is never held.
    """

    __slots__ = ("_transport", "_held", "_head_next")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._head_next = True  # the next write starts a response

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self._transport.writelines((self._held, data))
            self._held = None
        elif self._head_next and not data.startswith(b"HTTP/1.1 1"):
            self._held = data
            self._head_next = False
        else:
            self._transport.write(data)

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
    """HttpToolsProtocol that closes connections whose request head is late, and writes a
    response's head with its body (HeadWithBody)."""

    header_timeout = 10.0  # set per server by protocol_for(), per worker process by process_protocol()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # flow control keeps the transport itself
        self.transport = HeadWithBody(transport)  # type: ignore[assignment]
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self.transport.release()  # type: ignore[attr-defined]
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a response is still being sent: let it finish first
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
