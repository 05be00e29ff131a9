"""uvicorn's HTTP protocol with a deadline for each request's headers.

uvicorn times out an idle keep-alive connection only after a response, and stops
that timer at the first byte of the next request: a connection that sends
nothing, or headers that never end, is held for ever. Here each request's
headers must be complete within the server's `--header-timeout` seconds of the
connection opening or of the previous response; past that the client gets a 408
and the connection is closed.
"""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keras_vae_inference.json_bodies import dumps
from keras_vae_inference.server import worker_settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes connections whose headers come too late."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = worker_settings()["header_timeout"]
        self._deadline = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc):
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self):
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self):
        super().on_response_complete()
        # A pipelined request already sent its headers; it starts now.
        if not self.transport.is_closing() and not self.pipeline:
            self._arm()

    def _arm(self):
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _disarm(self):
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_late(self):
        self._deadline = None
        if self.transport.is_closing():
            return
        self.logger.warning("A request's headers took over %g s: 408", self.header_timeout)
        body = dumps({"error": (
            f"Expected a request's headers within {self.header_timeout:g} s of the connection "
            "opening or of the previous answer. Send each request whole, or start the server "
            "with a larger --header-timeout."
        )})  # fmt: skip
        head = (
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()
