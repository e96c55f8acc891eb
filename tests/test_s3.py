"""S3 storage against moto's S3 server on 127.0.0.1 with authentication enforced.

moto accepts any signature unless told otherwise. The bucket and an IAM user with a read-only
inline policy are set up while authentication is off, then /moto-api/reset-auth sets
INITIAL_NO_AUTH_ACTION_COUNT to 0: from there on every request must carry a valid SigV4 signature
by a known key, and the policy is enforced.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors, free_port
from tests.imds import LIFETIME, FakeClock, FakeImds
from vodorigin.settings import Settings
from vodorigin.storage.factory import probe_storage
from vodorigin.storage.reads import ResilientStorage
from vodorigin.storage.s3 import S3Storage

BUCKET = "media"
PREFIX = "vod/"
FILES = ["bframes.mp4", "moov_end.mp4", "audio_only.m4a"]
ARCHIVE = "archive"  # a second bucket, mapped to the media path prefix "old/"
READ_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                     "Resource": [f"arn:aws:s3:::{BUCKET}/*",
                                                                  f"arn:aws:s3:::{ARCHIVE}/*"]}]}


TRUST_THE_ADMIN = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"AWS": "arn:aws:iam::123456789012:user/admin"}}]}  # moto checks principals literally
ROLES = ("reader-1", "reader-2")  # both with the read-only policy; the IMDS test revokes reader-1's


@dataclass(frozen=True)
class Bucket:
    endpoint: str
    key_id: str
    secret: str
    admin: object  # a boto3 S3 client with write access
    iam: object  # boto3 IAM and STS clients of the admin user
    sts: object
    admin_keys: tuple[str, str]  # the admin's key id and secret

    def assume(self, role: str) -> dict[str, str]:
        """Temporary credentials (with a session token) for one of ROLES, from moto's STS."""
        arn = f"arn:aws:iam::123456789012:role/{role}"
        answer = self.sts.assume_role(RoleArn=arn, RoleSessionName="vodorigin")  # type: ignore[attr-defined]
        return dict(answer["Credentials"])

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "storage": "s3", "s3_bucket": BUCKET, "s3_prefix": PREFIX, "s3_endpoint_url": self.endpoint,
            "s3_addressing_style": "path", "s3_access_key_id": self.key_id,
            "s3_secret_access_key": self.secret, "upstream_timeout": 5.0, **LIVE_SETTINGS}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]



@pytest.fixture(scope="module")
def bucket() -> Iterator[Bucket]:
    port = free_port()
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
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]})):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        for role in ROLES:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_THE_ADMIN))
            iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=json.dumps(READ_ONLY))
        as_admin = {"endpoint_url": endpoint, "region_name": "us-east-1",
                    "aws_access_key_id": keys["admin"]["AccessKeyId"],
                    "aws_secret_access_key": keys["admin"]["SecretAccessKey"]}
        admin = boto3.client("s3", **as_admin)
        boto3.client("s3", **bootstrap).create_bucket(Bucket=BUCKET)
        boto3.client("s3", **bootstrap).create_bucket(Bucket=ARCHIVE)
        boto3.client("s3", **bootstrap).put_object(Bucket=ARCHIVE, Key="masters/2019/hevc.mp4",
                                                  Body=(FIXTURES / "hevc.mp4").read_bytes())
        for name in FILES:
            boto3.client("s3", **bootstrap).put_object(Bucket=BUCKET, Key=PREFIX + name,
                                                      Body=(FIXTURES / name).read_bytes())
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # auth from here
        unsigned = httpx.get(f"{endpoint}/{BUCKET}/{PREFIX}bframes.mp4")
        assert unsigned.status_code == 403, "moto must enforce authentication"
        yield Bucket(endpoint, keys["origin"]["AccessKeyId"], keys["origin"]["SecretAccessKey"], admin,
                     boto3.client("iam", **as_admin), boto3.client("sts", **as_admin),
                     (keys["admin"]["AccessKeyId"], keys["admin"]["SecretAccessKey"]))
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
    """With small blocks and no block cache: a cold index costs one stat and one read (moov at the
    front), two or three reads with the moov at the end; eight concurrent cold requests share one
    load; a segment reads only its merged ranges."""
    with LiveServer(bucket.settings(upstream_block_size=16384, upstream_block_cache_bytes=0)) as server:
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
        segment = httpx.get(f"{server.base}/hls/bframes.mp4/seg-2-v1-a1.ts")
        assert segment.status_code == 200
        assert 1 <= counters.reads - before <= 3
        assert counters.bytes - bytes_before < (FIXTURES / "bframes.mp4").stat().st_size // 3


def test_blocks_are_shared_between_requests(bucket: Bucket) -> None:
    """With the default blocks (256 KiB) and block cache: the first segment is in the block the
    moov came in; DASH audio and video fragments of one segment, and HLS after DASH, read nothing
    more; neighbouring segments share their boundary block."""
    with LiveServer(bucket.settings()) as server:
        counters = _counters(server)
        base = f"{server.base}/dash/bframes.mp4"
        assert httpx.get(f"{base}/manifest.mpd").status_code == 200
        assert counters.reads == 1
        assert httpx.get(f"{server.base}/hls/bframes.mp4/seg-1-v1-a1.ts").status_code == 200
        assert counters.reads == 1 and counters.block_hits >= 1
        assert httpx.get(f"{base}/fragment-3-v1.m4s").status_code == 200
        reads, hits = counters.reads, counters.block_hits
        assert httpx.get(f"{base}/fragment-3-a1.m4s").status_code == 200
        assert httpx.get(f"{server.base}/hls/bframes.mp4/seg-3-v1-a1.ts").status_code == 200
        assert counters.reads == reads and counters.block_hits > hits
        for n in range(4, 9):
            assert httpx.get(f"{base}/fragment-{n}-v1.m4s").status_code == 200
        assert counters.bytes <= (FIXTURES / "bframes.mp4").stat().st_size, "no block was read twice"
        storage = server.server.config.app.state.origin.storage
        assert storage.blocks.currsize <= Settings().upstream_block_cache_bytes


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


def test_sts_credentials_with_a_session_token(bucket: Bucket) -> None:
    """Temporary credentials of an assumed role sign every read; a wrong session token is a 403."""
    keys = bucket.assume("reader-2")
    temporary = {"s3_access_key_id": keys["AccessKeyId"], "s3_secret_access_key": keys["SecretAccessKey"],
                 "s3_session_token": keys["SessionToken"]}
    with LiveServer(bucket.settings(**temporary)) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 200
        segment = httpx.get(f"{server.base}/hls/bframes.mp4/seg-1-v1-a1.ts")
        assert segment.status_code == 200 and segment.content[0] == 0x47
    with LiveServer(bucket.settings(**{**temporary, "s3_session_token": "forged"})) as server:
        forged = httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8")
        assert forged.status_code in (403, 502)  # S3 answers 400 InvalidToken; HEAD carries no code
        assert "S3" in forged.json()["error"]


@pytest.fixture
def instance_role(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeImds]:
    """botocore's default chain with nothing configured but a (fake) instance metadata service."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "BOTO_CONFIG"):
        monkeypatch.setenv(name, "/nonexistent/vodorigin-test")
    imds = FakeImds(lambda: bucket.assume(ROLES[0]), FakeClock())
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint)
    with imds:
        yield imds


def test_instance_role_credentials_are_refreshed_before_they_expire(
        bucket: Bucket, instance_role: FakeImds) -> None:
    """Credentials come from IMDSv2 and are used until they near expiry; then, with the clock moved
    to five minutes before it, the next reads fetch new ones and keep succeeding, on the same client
    (no restart). Revoking the first role's policy in between proves which credentials sign."""
    settings = bucket.settings(s3_access_key_id="", s3_secret_access_key="")
    with LiveServer(settings) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 200
        assert len(instance_role.handed_out) == 1 and instance_role.unauthorised == 0
        backend = server.server.config.app.state.origin.storage.backend
        client = backend._client
        credentials = client._request_signer._credentials
        credentials._time_fetcher = instance_role.clock.now  # botocore's refresh decisions use this clock

        bucket.iam.delete_role_policy(RoleName=ROLES[0], PolicyName="read")  # type: ignore[attr-defined]
        assert httpx.get(f"{server.base}/hls/bframes.mp4/seg-1-v1-a1.ts").status_code == 403
        assert len(instance_role.handed_out) == 1, "credentials far from expiry are not fetched again"

        instance_role.issue = lambda: bucket.assume(ROLES[1])
        instance_role.clock.offset = LIFETIME - datetime.timedelta(minutes=5)
        with ThreadPoolExecutor(4) as pool:
            segments = [f"{server.base}/hls/bframes.mp4/seg-{n}-v1-a1.ts" for n in range(1, 5)]
            statuses = list(pool.map(lambda url: httpx.get(url, timeout=30).status_code, segments))
        assert statuses == [200] * 4
        assert len(instance_role.handed_out) == 2, "one refresh shared by the concurrent requests"
        assert backend._client is client, "the same client, refreshed in place"
        assert httpx.get(f"{server.base}/dash/bframes.mp4/manifest.mpd").status_code == 200


def test_buckets_mapped_to_path_prefixes(bucket: Bucket) -> None:
    """old/P is read from the archive bucket under masters/; other paths from the default bucket;
    without a default bucket, an unmapped path is a 404."""
    local_settings = Settings(media_root=str(FIXTURES), **LIVE_SETTINGS)  # type: ignore[arg-type]
    mapped = {"old": f"{ARCHIVE}/masters/"}
    with LiveServer(bucket.settings(s3_buckets=mapped)) as remote, LiveServer(local_settings) as local:
        pairs = (("/hls/old/2019/hevc.mp4/master.m3u8", "/hls/hevc.mp4/master.m3u8"),
                 ("/dash/old/2019/hevc.mp4/fragment-2-v1.m4s", "/dash/hevc.mp4/fragment-2-v1.m4s"),
                 ("/hls/bframes.mp4/seg-1-v1-a1.ts", None))
        for ours, reference in pairs:
            answer, expected = httpx.get(remote.base + ours), httpx.get(local.base + (reference or ours))
            assert answer.status_code == expected.status_code == 200, ours
            assert answer.content == expected.content, ours
        assert httpx.get(f"{remote.base}/hls/old/2019/bframes.mp4/master.m3u8").status_code in (403, 404)
    with LiveServer(bucket.settings(s3_bucket="", s3_buckets=mapped)) as remote:
        assert httpx.get(f"{remote.base}/hls/old/2019/hevc.mp4/master.m3u8").status_code == 200
        unmapped = httpx.get(f"{remote.base}/hls/bframes.mp4/master.m3u8")
        assert unmapped.status_code == 404 and "no S3 bucket" in unmapped.json()["error"]


def test_the_longest_mapped_prefix_wins_on_whole_components() -> None:
    storage = S3Storage("default", "vod/", buckets={"a": "one", "a/b": "s3://two/x/y/", "c/": "three/z"})
    assert storage.locate("a/m.mp4") == ("one", "m.mp4")
    assert storage.locate("a/b/m.mp4") == ("two", "x/y/m.mp4")
    assert storage.locate("ab/m.mp4") == ("default", "vod/ab/m.mp4")
    assert storage.locate("c/d/m.mp4") == ("three", "z/d/m.mp4")
    with pytest.raises(ValueError, match="s3_buckets"):
        bucket_settings = {"storage": "s3", "s3_buckets": {"../up": "b"}}
        Settings(**bucket_settings)  # type: ignore[arg-type]


def test_the_startup_check_names_what_is_wrong(bucket: Bucket) -> None:
    """storage_check: the read-only user passes (S3 checked its signature: AccessDenied on the
    listing, which it may not do, is not a fault); a bad secret, a missing bucket among the mapped
    ones and an endpoint nobody listens on are each named."""
    assert asyncio.run(probe_storage(bucket.settings(s3_buckets={"old": ARCHIVE}))) is None
    wrong = asyncio.run(probe_storage(bucket.settings(s3_secret_access_key="not-the-secret")))
    assert wrong is not None and "SignatureDoesNotMatch" in wrong and f"s3://{BUCKET}" in wrong
    key_id, secret = bucket.admin_keys  # one allowed to list, so that S3 says the bucket is missing
    as_admin = bucket.settings(s3_buckets={"old": "no-such-bucket"}, s3_access_key_id=key_id,
                               s3_secret_access_key=secret)
    missing = asyncio.run(probe_storage(as_admin))
    assert missing is not None and "s3://no-such-bucket" in missing and f"s3://{BUCKET}" not in missing
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = asyncio.run(probe_storage(bucket.settings(s3_endpoint_url=closed)))
    assert unreachable is not None and "unreachable" in unreachable and closed in unreachable
