"""A minimal HTTP/1.1 client for offering load: one keep-alive connection, POST only.

The paced HTTP phases must offer 150 requests a second on two cores that the services share.
httpx costs about 2 ms of CPU per request on this machine, and its pool scans every
connection on every event: the benchmark became the bottleneck. This client writes the
request bytes and reads the status line, the headers and a Content-Length or chunked body,
nothing more (no TLS, no redirects, no cookies: loopback to our own services).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


class Connection:
    """One keep-alive HTTP/1.1 connection to `base_url`, re-opened when the server closes it."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"plain http://host:port only, not {base_url}")
        self._host, self._port = parts.hostname, parts.port or 80
        fixed = {"host": f"{self._host}:{self._port}", **{k.lower(): v for k, v in headers.items()}}
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode()
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST; HttpError (the connection closed) on any failure."""
        try:
            return await asyncio.wait_for(self._post(path, body), self._timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from error

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(
            b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s"
            % (path.encode(), self._headers, len(body), body)
        )
        status_line = await self._reader.readuntil(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line[:40]!r}")
        status = int(rest[:3])
        length, chunked, close = 0, False, version == b"HTTP/1.0"
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        answer = await self._chunked() if chunked else await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, answer

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        while await self._reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return b"".join(parts)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
