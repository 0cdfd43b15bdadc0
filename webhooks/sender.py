"""One HTTP POST of a webhook, to an address already checked by `webhooks.destinations`.

The connection goes to that address (never a fresh lookup) with the URL's host in the Host header
and, for https, in SNI and certificate checks. The whole exchange has one deadline (15 s by
default): a timer shuts the socket when it passes, so a receiver that trickles bytes cannot hold a
sweeper. Redirects are not followed (a 3xx is a failure); at most 4 KB of the answer is kept, for
the delivery log.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from webhooks.destinations import Target

BODY_KEPT = 4096
USER_AGENT = "Tsunagu-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP answer (refused, timed out, reset)
    latency_ms: int
    error: str | None = None
    retry_after: str | None = None


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, addresses: list[str], headers: dict[str, str], body: bytes,
         timeout: float = 15.0, context: ssl.SSLContext | None = None) -> Outcome:
    """POST `body` to the first of `addresses` that accepts a connection."""
    started = time.monotonic()
    error = "no address to connect to"
    for address in addresses:
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            error = f"timed out after {timeout:g} s"
            break
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPS(target, address, remaining,
                                                            context or ssl.create_default_context())
        else:
            conn = _PinnedHTTP(target, address, remaining)
        expired = threading.Event()

        def _expire(c: http.client.HTTPConnection = conn, flag: threading.Event = expired) -> None:
            flag.set()
            sock = c.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(remaining, _expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                conn.connect()
            except OSError as exc:
                error = f"timed out after {timeout:g} s" if expired.is_set() or isinstance(exc, TimeoutError) \
                    else f"connection to {address} failed: {exc}"
                continue  # the next address, if any
            try:
                conn.request("POST", target.path, body=body, headers={
                    **headers, "Host": target.host_header, "Content-Type": "application/json",
                    "User-Agent": USER_AGENT, "Connection": "close"})
                response = conn.getresponse()
                text = response.read(BODY_KEPT).decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:
                late = expired.is_set() or isinstance(exc, TimeoutError)
                return Outcome(None, _ms(started), f"timed out after {timeout:g} s" if late
                               else f"{type(exc).__name__}: {exc}"[:500])
            status = response.status
            detail = None
            if not 200 <= status < 300:
                where = f" to {response.getheader('Location')}" if 300 <= status < 400 else ""
                detail = f"HTTP {status}{where}" + (f": {text.strip()[:300]}" if text.strip() else "")
            return Outcome(status, _ms(started), detail, response.getheader("Retry-After"))
        finally:
            watchdog.cancel()
            conn.close()
    return Outcome(None, _ms(started), error[:500])


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
