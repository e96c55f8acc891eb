"""Small JSON documents from services next to the media: mappings (mapped mode) and DRM info.

One GET within the deadline, a body bounded in bytes, and the failures said with the error tree:
no answer in time is a 504, a broken connection, an unexpected status or an oversized body a 502.
A 404 is returned as None, for the caller to say what it means (a missing mapping is a 404; a
missing key, a 502: the media exists, its key does not).
"""

from __future__ import annotations

import asyncio

import httpx

from vodorigin.errors import UpstreamError, UpstreamTimeout


class DocumentClient:
    def __init__(self, timeout: float, max_size: int, what: str) -> None:
        self.timeout = timeout
        self.max_size = max_size
        self.what = what  # "the mapping service", "the DRM-info service"
        self._client: httpx.AsyncClient | None = None

    async def get(self, url: str) -> bytes | None:
        """The body of a 200, or None for a 404."""
        try:
            async with asyncio.timeout(self.timeout), self.client.stream("GET", url) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise UpstreamError(f"{url}: {self.what} answered {response.status_code}")
                return await self._body(response, url)
        except (httpx.TimeoutException, TimeoutError):
            raise UpstreamTimeout(f"{url}: {self.what} did not answer in time") from None
        except httpx.HTTPError as error:
            raise UpstreamError(f"{url}: {type(error).__name__}") from None

    async def _body(self, response: httpx.Response, url: str) -> bytes:
        chunks, received = [], 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self.max_size:
                raise UpstreamError(f"{url}: {self.what} sent more than {self.max_size} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
