"""How uvicorn runs the app: its HTTP protocol with a request-head timeout, and its options.

uvicorn's keep-alive timeout starts only after a response: a connection that never sends a
complete request head (opened and left idle, or fed a byte at a time) would be held forever, and
enough of them exhaust the process's file descriptors. `HeadTimeoutProtocol` closes a connection
whose request head is not complete `header_timeout` seconds after the connection opened or the
request began (nginx's client_header_timeout does the same).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vodorigin.settings import Settings

log = logging.getLogger("vodorigin")


class HeadTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes connections whose request head is late."""

    header_timeout = 10.0  # set per server by protocol_for(), per worker process by process_protocol()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

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
