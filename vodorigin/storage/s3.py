"""Amazon S3 and S3-compatible stores, read with SigV4-signed ranged GETs (aioboto3).

One client per application lifetime (a keep-alive pool), made on first use inside the event loop
and closed at shutdown. Several buckets can serve one origin: `buckets` maps a leading part of the
media path to "bucket" or "bucket/key-prefix" (the longest mapped prefix wins, on whole path
components); paths no mapping claims go to the default bucket and prefix, or are 404 without one.

Credentials: static keys (with a session token for STS credentials), a profile, or botocore's
default chain: environment, shared files, and IMDSv2 instance-role credentials, which botocore
refreshes before they expire, so a rotation never needs a restart.

Errors: NoSuchKey/404 -> 404; AccessDenied/403 -> 403 (S3 answers 403 for a missing key too when
the role lacks s3:ListBucket); SlowDown/503/5xx -> retryable (storage/reads.py retries them);
anything else -> 502. Every one is logged with the key and the upstream status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from vodorigin.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout, VodError
from vodorigin.media.model import SourceIdentity
from vodorigin.storage.local import check_relative_path

log = logging.getLogger("vodorigin.upstream")
DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                "TokenRefreshRequired"}  # S3 answers 400 for the token ones
RETRYABLE_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", region: str = "us-east-1", endpoint_url: str = "",
                 addressing_style: str = "auto", access_key_id: str = "", secret_access_key: str = "",
                 session_token: str = "", profile: str = "", timeout: float = 10.0,
                 max_connections: int = 32, buckets: Mapping[str, str] | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.mounts = sorted(((url_prefix.strip("/") + "/", *_bucket_and_prefix(target))
                              for url_prefix, target in (buckets or {}).items()),
                             key=lambda mount: -len(mount[0]))  # longest URL prefix first
        self.endpoint_url = endpoint_url or None
        self.session = aioboto3.Session(
            aws_access_key_id=access_key_id or None, aws_secret_access_key=secret_access_key or None,
            aws_session_token=session_token or None, profile_name=profile or None, region_name=region)
        self.config = Config(
            signature_version="s3v4", s3={"addressing_style": addressing_style},
            connect_timeout=timeout, read_timeout=timeout, max_pool_connections=max_connections,
            retries={"max_attempts": 1, "mode": "standard"},  # storage/reads.py owns retries
        )
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    client = self.session.client("s3", endpoint_url=self.endpoint_url, config=self.config)
                    self._client = await self._stack.enter_async_context(client)
        return self._client

    def locate(self, path: str) -> tuple[str, str]:
        """The bucket and key holding a media path."""
        path = check_relative_path(path)
        for url_prefix, bucket, key_prefix in self.mounts:
            if path.startswith(url_prefix):
                return bucket, key_prefix + path[len(url_prefix):]
        if not self.bucket:
            raise NotFound(f"{path}: no S3 bucket is mapped to this path")
        return self.bucket, self.prefix + path

    async def stat(self, path: str) -> SourceIdentity:
        bucket, key = self.locate(path)
        try:
            head = await (await self.client()).head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "HEAD", bucket, key, path) from None
        modified = head.get("LastModified")
        return SourceIdentity(path, int(head["ContentLength"]), modified.timestamp() if modified else 0.0,
                              str(head.get("ETag", "")).strip('"'))

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        bucket, key = self.locate(source.path)
        byte_range = f"bytes={offset}-{offset + length - 1}"
        try:
            client = await self.client()
            conditions = {"IfMatch": f'"{source.etag}"'} if source.etag else {}  # a replaced object: 412
            response = await client.get_object(Bucket=bucket, Key=key, Range=byte_range, **conditions)
            body = response["Body"]
            try:
                content_range = response.get("ContentRange", "")
                if not content_range.startswith(f"bytes {offset}-{offset + length - 1}/"):
                    log.warning("GET s3://%s/%s: Content-Range %r for %s", bucket, key, content_range,
                                byte_range)
                    raise UpstreamError(f"{source.path}: S3 answered another range")  # body left unread
                data = await body.read()
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "GET", bucket, key, source.path) from None
        if len(data) != length:
            log.warning("GET s3://%s/%s: %d bytes instead of %d", bucket, key, len(data), length)
            raise UpstreamError(f"{source.path}: short body ({len(data)} of {length} bytes)", retryable=True)
        return bytes(data)

    async def probe(self) -> str | None:
        """The startup check: can every bucket be reached with these credentials? None, or what is
        wrong. A one-key listing (GET, so S3 names the error): AccessDenied means S3 accepted the
        signature and the role may still read objects without s3:ListBucket, so it passes."""
        problems = []
        client = await self.client()
        for bucket, prefix in dict.fromkeys([(self.bucket, self.prefix)] + [m[1:] for m in self.mounts]):
            if not bucket:
                continue
            try:
                await client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code != "AccessDenied":
                    problems.append(f"s3://{bucket} answered {status} {code}")
            except BotoCoreError as exc:
                problems.append(f"s3://{bucket} at {self.endpoint_url or 'AWS'} is unreachable ({exc})")
        return "; ".join(problems) or None

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None


def _bucket_and_prefix(target: str) -> tuple[str, str]:
    """"bucket" or "bucket/key/prefix" -> (bucket, "key/prefix/")."""
    bucket, _, key_prefix = target.removeprefix("s3://").partition("/")
    key_prefix = key_prefix.strip("/")
    return bucket, key_prefix + "/" if key_prefix else ""


def _error(exc: ClientError | BotoCoreError, method: str, bucket: str, key: str, path: str) -> VodError:
    """The error of errors.py for what S3 (or the way to it) answered; logged with key and status."""
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        log.warning("%s s3://%s/%s: timed out", method, bucket, key)
        return UpstreamTimeout(f"{path}: S3 timed out")
    if not isinstance(exc, ClientError):
        log.warning("%s s3://%s/%s: %s", method, bucket, key, exc)
        return UpstreamError(f"{path}: S3 unreachable ({type(exc).__name__})", retryable=True)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    log.warning("%s s3://%s/%s: %s %s (%s)", method, bucket, key, status, code, error.get("Message", ""))
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return NotFound(f"{path}: not found in S3")
    if code in DENIED_CODES or status == 403:
        return Forbidden(f"{path}: S3 denied access ({code or status})")
    if code in ("PreconditionFailed", "412") or status == 412:
        return UpstreamError(f"{path}: the object changed while it was being read", retryable=False)
    retryable = code in RETRYABLE_CODES or status >= 500
    return UpstreamError(f"{path}: S3 answered {status} {code}", retryable=retryable)
