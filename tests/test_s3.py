"""S3 storage against moto's S3 server on 127.0.0.1 with authentication enforced.

moto accepts any signature unless told otherwise. The bucket and an IAM user with a read-only
inline policy are set up while authentication is off, then /moto-api/reset-auth sets
INITIAL_NO_AUTH_ACTION_COUNT to 0: from there on every request must carry a valid SigV4 signature
by a known key, and the policy is enforced.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors
from vodorigin.settings import Settings
from vodorigin.storage.reads import ResilientStorage

BUCKET = "media"
PREFIX = "vod/"
FILES = ["bframes.mp4", "moov_end.mp4", "audio_only.m4a"]
READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}


@dataclass(frozen=True)
class Bucket:
    endpoint: str
    key_id: str
    secret: str
    admin: object  # a boto3 S3 client with write access

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "storage": "s3", "s3_bucket": BUCKET, "s3_prefix": PREFIX, "s3_endpoint_url": self.endpoint,
            "s3_addressing_style": "path", "s3_access_key_id": self.key_id,
            "s3_secret_access_key": self.secret, "upstream_timeout": 5.0, **LIVE_SETTINGS}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def bucket() -> Iterator[Bucket]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf").raise_for_status()  # setup
        bootstrap = {"endpoint_url": endpoint, "region_name": "us-east-1",
                     "aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
        iam = boto3.client("iam", **bootstrap)
        keys = {}
        for user, policy in (("origin", READ_ONLY), ("admin", {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                             aws_access_key_id=keys["admin"]["AccessKeyId"],
                             aws_secret_access_key=keys["admin"]["SecretAccessKey"])
        boto3.client("s3", **bootstrap).create_bucket(Bucket=BUCKET)
        for name in FILES:
            boto3.client("s3", **bootstrap).put_object(Bucket=BUCKET, Key=PREFIX + name,
                                                      Body=(FIXTURES / name).read_bytes())
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # auth from here
        unsigned = httpx.get(f"{endpoint}/{BUCKET}/{PREFIX}bframes.mp4")
        assert unsigned.status_code == 403, "moto must enforce authentication"
        yield Bucket(endpoint, keys["origin"]["AccessKeyId"], keys["origin"]["SecretAccessKey"], admin)
    finally:
        server.stop()


def _counters(server: LiveServer) -> object:
    storage = server.server.config.app.state.origin.storage
    assert isinstance(storage, ResilientStorage)
    return storage.counters


def test_hls_and_dash_from_the_bucket_match_local(bucket: Bucket) -> None:
    """Everything the S3-backed server sends equals what the local one sends for the same file,
    and ffmpeg reads the S3-backed masters and MPD with nothing on stderr."""
    local_settings = Settings(media_root=str(FIXTURES), **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(bucket.settings()) as remote, LiveServer(local_settings) as local:
        for name in FILES:
            assert ffmpeg_read_errors(f"{remote.base}/hls/{name}/master.m3u8") == ""
        assert ffmpeg_read_errors(f"{remote.base}/dash/bframes.mp4/manifest.mpd") == ""
        for path in ("/hls/bframes.mp4/index-v1-a1.m3u8", "/hls/bframes.mp4/seg-2-v1-a1.ts",
                     "/hls/moov_end.mp4/seg-3-v1-a1.ts", "/dash/bframes.mp4/manifest.mpd",
                     "/dash/bframes.mp4/fragment-2-v1.m4s", "/hls/audio_only.m4a/seg-1-a1.ts"):
            ours, reference = httpx.get(remote.base + path), httpx.get(local.base + path)
            assert ours.status_code == reference.status_code == 200, path
            assert ours.content == reference.content, path
        ranged = httpx.get(f"{remote.base}/pd/bframes.mp4", headers={"range": "bytes=1000-2999"})
        assert ranged.status_code == 206
        assert ranged.content == (FIXTURES / "bframes.mp4").read_bytes()[1000:3000]


def test_reads_are_bounded(bucket: Bucket) -> None:
    """A cold index costs one stat and one read (moov at the front), two or three reads with the
    moov at the end; eight concurrent cold requests share one load; a segment reads only its
    merged ranges."""
    with LiveServer(bucket.settings()) as server:
        counters = _counters(server)
        assert httpx.get(f"{server.base}/hls/bframes.mp4/index.m3u8").status_code == 200
        assert (counters.reads, counters.stats) == (1, 1)
        assert httpx.get(f"{server.base}/hls/moov_end.mp4/index.m3u8").status_code == 200
        assert 3 <= counters.reads <= 4
        before = counters.reads
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: httpx.get(f"{server.base}/hls/audio_only.m4a/index.m3u8",
                                                         timeout=30).status_code, range(8)))
        assert statuses == [200] * 8
        assert counters.reads == before + 1
        before, bytes_before = counters.reads, counters.bytes
        segment = httpx.get(f"{server.base}/hls/bframes.mp4/seg-1-v1-a1.ts")
        assert segment.status_code == 200
        assert 1 <= counters.reads - before <= 3
        assert counters.bytes - bytes_before < (FIXTURES / "bframes.mp4").stat().st_size // 3


def test_wrong_secret_is_a_403_with_a_log_line(bucket: Bucket, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vodorigin.upstream"), \
            LiveServer(bucket.settings(s3_secret_access_key="wrong")) as server:
        response = httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8")
        assert response.status_code == 403 and "denied" in response.json()["error"]
        assert httpx.get(f"{server.base}/health").status_code == 200
    assert any("s3://media/vod/bframes.mp4" in r.getMessage() and "403" in r.getMessage()
               for r in caplog.records)


def test_a_missing_key_is_a_4xx(bucket: Bucket) -> None:
    """A missing key is 404 (or 403, as S3 answers when the role lacks s3:ListBucket); never 5xx."""
    with LiveServer(bucket.settings()) as server:
        assert httpx.get(f"{server.base}/hls/nothing.mp4/master.m3u8").status_code in (403, 404)
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 200


def test_a_replaced_object_is_picked_up(bucket: Bucket) -> None:
    """ETag and size come from S3 and key the metadata cache: replacing the object changes the answer."""
    key = PREFIX + "replaced.mp4"
    bucket.admin.put_object(Bucket=BUCKET, Key=key, Body=(FIXTURES / "bframes.mp4").read_bytes())  # type: ignore[attr-defined]
    with LiveServer(bucket.settings()) as server:
        first = httpx.get(f"{server.base}/hls/replaced.mp4/master.m3u8")
        assert first.status_code == 200 and "avc1.64000d" in first.text
        bucket.admin.put_object(Bucket=BUCKET, Key=key, Body=(FIXTURES / "hevc.mp4").read_bytes())  # type: ignore[attr-defined]
        second = httpx.get(f"{server.base}/hls/replaced.mp4/master.m3u8")
        assert second.status_code == 200 and "hvc1" in second.text
        assert first.headers["etag"] != second.headers["etag"]
