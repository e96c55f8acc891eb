"""The storage backend the settings name; remote ones wrapped in the shared read layer."""

from __future__ import annotations

import asyncio

from vodorigin.settings import Settings
from vodorigin.storage.base import Storage
from vodorigin.storage.local import LocalStorage
from vodorigin.storage.reads import ReadPolicy, ResilientStorage


def storage_for(settings: Settings) -> Storage:
    if settings.storage == "local":
        return LocalStorage(settings.media_root_path)
    policy = ReadPolicy(settings.upstream_timeout, settings.upstream_retries, settings.upstream_backoff,
                        settings.upstream_concurrency, settings.upstream_block_size,
                        settings.upstream_block_cache_bytes)
    if settings.storage == "http":
        from vodorigin.storage.http import HttpStorage

        backend: Storage = HttpStorage(settings.http_base_url, settings.http_headers,
                                       settings.upstream_timeout, settings.upstream_concurrency)
    else:
        from vodorigin.storage.s3 import S3Storage  # aioboto3 is imported only when S3 is configured

        backend = S3Storage(
            settings.s3_bucket, settings.s3_prefix, settings.s3_region, settings.s3_endpoint_url,
            settings.s3_addressing_style, settings.s3_access_key_id, settings.s3_secret_access_key,
            settings.s3_session_token, settings.s3_profile, settings.upstream_timeout,
            settings.upstream_concurrency, settings.s3_buckets)
    return ResilientStorage(backend, policy, settings.storage)


async def probe_storage(settings: Settings) -> str | None:
    """What is wrong with reaching the configured S3 buckets or HTTP upstream, or None (local storage
    is checked by the CLI, which needs no request). One attempt, within upstream_timeout."""
    storage = storage_for(settings)
    try:
        probe = getattr(getattr(storage, "backend", storage), "probe", None)
        return await asyncio.wait_for(probe(), settings.upstream_timeout) if probe else None
    except TimeoutError:
        return f"no answer within {settings.upstream_timeout} s"
    finally:
        await storage.close()
