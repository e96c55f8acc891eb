"""One settings model: configs/*.toml, then VODORIGIN_<NAME> environment variables, then CLI flags.

The model is flat so that every setting has one obvious environment name (segment_duration ->
VODORIGIN_SEGMENT_DURATION). Unknown keys are an error, so a typo in a config never passes silently.

Per protocol, the tables [hls], [dash], [hds] and [mss] override the segmentation, manifest and
caching-header settings (PROTOCOL_SETTINGS) for that protocol, as nginx-vod-module's per-location
directives do (environment: VODORIGIN_DASH__SEGMENT_DURATION=4). for_protocol() gives the settings
one protocol sees; each view is validated on its own, so cross-field rules hold per protocol.
"""

from __future__ import annotations

import email.utils
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

ENV_PREFIX = "VODORIGIN_"
PROTOCOL_TABLES = ("hls", "dash", "hds", "mss")
# What a protocol's table may set: segmentation, manifests and caching headers
PROTOCOL_SETTINGS = ("segment_duration", "bootstrap_segment_durations", "align_segments_to_key_frames",
                     "segment_count_policy", "manifest_segment_durations_mode", "manifest_duration_policy",
                     "expires_manifest", "expires_segment", "gzip_manifests", "last_modified", "drm_enabled")
PROTOCOL_ONLY = {"hls": ("hls_container", "hls_iframes_playlists", "hls_encryption_method",
                         "hls_encryption_key_uri", "hls_encryption_key_formats"),
                 "dash": ("dash_manifest_format", "dash_segment_index", "dash_subtitle_format",
                          "dash_encryption_scheme")}

HLS_KEY_FORMATS = ("identity", "com.apple.streamingkeydelivery",  # packagers/hls_keys.py
                   "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "com.microsoft.playready",
                   "org.w3.clearkey")
SegmentCountPolicy = Literal["last_short", "last_long", "last_rounded"]
DurationsMode = Literal["accurate", "estimate"]
DurationPolicy = Literal["max", "min"]


class Settings(BaseModel):
    """Every setting with its default; configs/local.toml documents each one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    keepalive_timeout: int = Field(75, ge=1)  # seconds; longer than the ALB idle timeout (60 s)
    header_timeout: float = Field(10.0, gt=0)  # seconds a request head may take to arrive
    server: Literal["uvicorn", "granian"] = "uvicorn"  # the HTTP server (web/server.py)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # storage
    storage: Literal["local", "http", "s3"] = "local"
    media_root: str = "fixtures"  # local; in a config file, relative to the file's folder
    http_base_url: str = ""  # http: media path P is read from <http_base_url>/P
    http_headers: dict[str, str] = {}  # http: sent with every upstream request (e.g. a secret)
    s3_bucket: str = ""  # the default bucket
    s3_prefix: str = ""  # key = <s3_prefix><media path>
    s3_buckets: dict[str, str] = {}  # more buckets: media path prefix -> "bucket" or "bucket/key-prefix"
    s3_region: str = "us-east-1"
    s3_endpoint_url: str = ""  # S3-compatible stores, moto in tests
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    s3_access_key_id: str = ""  # empty: the default chain (environment, profile, instance role)
    s3_secret_access_key: str = ""
    s3_session_token: str = ""
    s3_profile: str = ""
    storage_check: Literal["warn", "fatal", "off"] = "warn"  # `vodorigin serve` tries S3 / HTTP at startup

    # mapped mode: the URL names a mapping (nginx-vod-module's JSON media set), which names the files
    mode: Literal["files", "mapped"] = "files"
    mapping_url: str = ""  # mapped: a media-set path P is <mapping_url>/P; "": a JSON file P in storage
    mapping_cache_bytes: int = Field(16 * 1024 * 1024, ge=0)  # parsed mappings kept, bounded by bytes
    mapping_cache_ttl: float = Field(60.0, gt=0)  # seconds a mapping is used before it is asked again
    max_mapping_size: int = Field(1024 * 1024, ge=1024)  # bytes of a mapping response

    # encryption (README: Encryption); keys from secret_key or from the DRM-info service
    secret_key: str = ""  # HLS AES-128 keys: MD5 of this, $vod_filepath replaced by the media path
    drm_enabled: bool = False  # keys from drm_info_url; DASH: Common Encryption (cenc)
    drm_info_url: str = ""  # GET <drm_info_url>/<media path>: nginx-vod-module's DRM-info JSON
    cpix_url: str = ""  # drm_enabled, instead: GET <cpix_url>/<media path> answers a CPIX 2.3 document
    cpix_file: str = ""  # drm_enabled, instead: one CPIX document whose keys encrypt every file
    drm_info_cache_bytes: int = Field(4 * 1024 * 1024, ge=0)  # DRM answers kept, bounded by bytes
    drm_info_cache_ttl: float = Field(60.0, gt=0)  # seconds a DRM answer is used before it is asked again
    max_drm_info_size: int = Field(64 * 1024, ge=1024)  # bytes of a DRM-info response
    drm_clear_lead_segment_count: int = Field(1, ge=0)  # DASH: the first segments stay clear

    # upstream reads (http, s3)
    upstream_timeout: float = Field(10.0, gt=0)  # seconds for one read, retries included
    upstream_retries: int = Field(3, ge=0)  # extra attempts on 5xx, throttling, dropped connections
    upstream_backoff: float = Field(0.1, ge=0)  # seconds before the first retry; doubles, with jitter
    upstream_concurrency: int = Field(32, ge=1)  # reads in flight per upstream
    upstream_block_size: int = Field(256 * 1024, ge=4096)  # reads are widened to whole blocks, bytes
    upstream_block_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)  # recently read blocks; 0: none

    # segmentation (REFERENCE.md: Segmentation)
    segment_duration: float = Field(10.0, gt=0, le=600)  # seconds
    bootstrap_segment_durations: tuple[float, ...] = ()  # seconds, e.g. (2, 2, 2, 4)
    align_segments_to_key_frames: bool = True
    segment_count_policy: SegmentCountPolicy = "last_short"
    manifest_segment_durations_mode: DurationsMode = "accurate"
    manifest_duration_policy: DurationPolicy = "max"

    # HLS
    hls_container: Literal["auto", "mpegts", "fmp4"] = "auto"  # auto: TS for H.264, fMP4 for HEVC/AV1
    hls_iframes_playlists: bool = True  # EXT-X-I-FRAME-STREAM-INF in the master, iframes-*.m3u8
    # aes-128: whole segments in AES-128-CBC; sample-aes: the samples (TS: Apple's format for H.264,
    # AAC, AC-3; fMP4: Common Encryption 'cbcs'); sample-aes-ctr: fMP4 in Common Encryption 'cenc'
    hls_encryption_method: Literal["none", "aes-128", "sample-aes", "sample-aes-ctr"] = "none"
    hls_encryption_key_uri: str = ""  # EXT-X-KEY URI; {path} and {key_id} are replaced; "": encryption.key
    # sample-aes: an EXT-X-KEY per format (identity, com.apple.streamingkeydelivery, org.w3.clearkey,
    # com.microsoft.playready, urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed for Widevine)
    hls_encryption_key_formats: tuple[str, ...] = ("identity",)

    # DASH
    dash_manifest_format: Literal["segmenttimeline", "segmenttemplate", "segmentlist"] = "segmenttimeline"
    dash_segment_index: bool = False  # a sidx box in every fragment (styp, sidx, moof, mdat)
    dash_subtitle_format: Literal["webvtt", "wvtt", "stpp"] = "webvtt"  # one .vtt file, or fMP4 segments
    dash_encryption_scheme: Literal["cenc", "cbcs"] = "cenc"  # drm_enabled: Common Encryption scheme

    # reads
    initial_read_size: int = Field(65_536, ge=4096)  # first metadata read, bytes
    read_merge_gap: int = Field(65_536, ge=0)  # merge frame ranges closer than this, bytes

    # limits on untrusted media (README: Limits)
    max_moov_size: int = Field(128 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    max_moov_reads: int = Field(4, ge=2)  # bounded reads to locate the moov atom
    max_tracks: int = Field(32, ge=1)
    max_samples_per_track: int = Field(4_000_000, ge=1)
    max_samples_per_file: int = Field(8_000_000, ge=1)
    moov_sample_allowance: int = Field(500_000, ge=0)  # samples a file may claim beyond one per moov byte
    max_samples_per_media_set: int = Field(16_000_000, ge=1)
    max_duration_seconds: int = Field(48 * 3600, ge=1, le=10 * 365 * 86400)  # per track
    max_segments: int = Field(100_000, ge=1)  # per media set and protocol
    max_frame_size: int = Field(32 * 1024 * 1024, ge=1024)
    max_frames_per_segment: int = Field(100_000, ge=1)
    max_urlset_parts: int = Field(32, ge=1)

    # caches
    metadata_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    response_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)  # manifests and init segments; 0: off
    response_cache_ttl: float = Field(300.0, gt=0)  # seconds an entry may be served without rebuilding
    response_cache_segments: bool = False  # media segments too (they are large; the CDN caches them)
    allocator_retain_mib: int = Field(0, ge=0, le=4096)  # glibc keeps this much freed memory (allocator.py)

    # caching headers by request class (like nginx-vod-module's vod_expires); 0: no Cache-Control/Expires
    expires_manifest: int = Field(300, ge=0)  # seconds: playlists, MPDs
    expires_segment: int = Field(86400, ge=0)  # seconds: segments, fragments, init segments
    expires_progressive: int = Field(86400, ge=0)  # seconds: /pd/
    gzip_manifests: bool = True  # gzip manifests and WebVTT when the client accepts it; never media
    last_modified: str = ""  # a fixed Last-Modified for packaged responses (vod_last_modified); "": sources'


    # origin protection (both off by default)
    origin_secret_header: str = "x-origin-secret"  # the header a CDN adds (CloudFront custom header)
    origin_secret: str = ""  # when set, requests without header = secret are 403 (except /health)
    url_signing_key: str = ""  # when set, /token/<expires>-<hmac>/ in the path also lets a request in

    # player page
    player_page: bool = True  # /player/: the media list and hls.js / dash.js
    player_libs_dir: str = "player/node_modules"  # npm packages installed by scripts/setup.sh

    # operations
    shutdown_timeout: int = Field(30, ge=1)  # seconds in-flight responses get to finish on SIGTERM
    access_log: bool = True  # one line per request on the vodorigin.access logger
    log_format: Literal["json", "text"] = "json"  # every log line of the process, on stdout
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-For names the client
    purge_key: str = ""  # POST /purge/<path> with "Authorization: Bearer <purge_key>"; "": no purging

    # per protocol: tables overriding PROTOCOL_SETTINGS (and the protocol's own) for one protocol
    hls: dict[str, Any] = {}
    dash: dict[str, Any] = {}
    hds: dict[str, Any] = {}
    mss: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Settings:
        protocol = (info.context or {}).get("protocol", "")
        if protocol in ("", "dash") and self.dash_manifest_format == "segmenttemplate" and \
                self.bootstrap_segment_durations:
            raise ValueError("dash_manifest_format = segmenttemplate lists one fixed segment duration: "
                             "it cannot describe bootstrap_segment_durations (use segmenttimeline)")
        if self.last_modified and _http_date(self.last_modified) is None:
            raise ValueError(f"last_modified {self.last_modified!r} is not an HTTP date "
                             "(e.g. 'Sun, 19 Nov 2000 08:52:00 GMT')")
        keys = self.secret_key or self.drm_enabled
        if protocol == "hls" and self.hls_encryption_method != "none" and not keys:
            raise ValueError(f"hls_encryption_method = {self.hls_encryption_method} needs keys: "
                             "secret_key, or drm_enabled with drm_info_url, cpix_url or cpix_file")
        formats = self.hls_encryption_key_formats
        unknown = [name for name in formats if name not in HLS_KEY_FORMATS]
        if unknown or not formats or len(set(formats)) != len(formats):
            raise ValueError(f"hls_encryption_key_formats: {', '.join(unknown) or 'a list'} is not a list of "
                             f"distinct formats from {', '.join(HLS_KEY_FORMATS)}")
        hls = protocol in ("", "hls")
        samples = self.hls_encryption_method in ("sample-aes", "sample-aes-ctr")
        if hls and formats != ("identity",) and not samples:
            raise ValueError("hls_encryption_key_formats other than identity need hls_encryption_method "
                             "= sample-aes or sample-aes-ctr (DRM systems decrypt samples)")
        if hls and "com.microsoft.playready" in formats and not self.drm_enabled:
            raise ValueError("hls_encryption_key_formats: PlayReady needs its data from the DRM-info "
                             "service (drm_enabled)")
        sources = [name for name in ("drm_info_url", "cpix_url", "cpix_file") if getattr(self, name)]
        if self.drm_enabled and len(sources) != 1:
            raise ValueError("drm_enabled needs one key source: drm_info_url (the DRM-info service), "
                             f"cpix_url or cpix_file (CPIX), not {' and '.join(sources) or 'none'}")
        if self.drm_enabled and protocol == "hds":
            raise ValueError(f"[{protocol}] drm_enabled: {protocol.upper()} encryption is not supported yet "
                             f"(set drm_enabled = false in [{protocol}])")
        if self.storage == "http" and not self.http_base_url:
            raise ValueError("storage = http needs http_base_url")
        if self.storage == "s3" and not (self.s3_bucket or self.s3_buckets):
            raise ValueError("storage = s3 needs s3_bucket or s3_buckets")
        for url_prefix, target in self.s3_buckets.items():
            parts = url_prefix.strip("/").split("/")
            if "" in parts or ".." in parts or "." in parts or not target.removeprefix("s3://").split("/")[0]:
                raise ValueError(f"s3_buckets: {url_prefix!r} = {target!r} is not "
                                 "'media path prefix' = 'bucket[/key prefix]'")
        for name in PROTOCOL_TABLES:
            _check_table(name, getattr(self, name))
        encrypting = self.drm_enabled or self.hls_encryption_method != "none"
        if not protocol and (encrypting or any(getattr(self, name) for name in PROTOCOL_TABLES)):
            for name in PROTOCOL_TABLES:
                self.for_protocol(name)  # each protocol's view must be valid on its own
        return self

    def for_protocol(self, protocol: str) -> Settings:
        """The settings one protocol sees: the top level with its table's overrides (none for pd)."""
        values = self.model_dump()
        values.update(values.pop(protocol, {}) if protocol in PROTOCOL_TABLES else {})
        values.update(dict.fromkeys(PROTOCOL_TABLES, {}))
        return Settings.model_validate(values, context={"protocol": protocol})

    @property
    def last_modified_time(self) -> float | None:
        return _http_date(self.last_modified) if self.last_modified else None

    @property
    def segment_duration_ms(self) -> int:
        return round(self.segment_duration * 1000)

    @property
    def bootstrap_durations_ms(self) -> tuple[int, ...]:
        return tuple(round(d * 1000) for d in self.bootstrap_segment_durations)

    @property
    def media_root_path(self) -> Path:
        return Path(self.media_root).resolve()


class SettingsError(Exception):
    """A configuration that cannot be loaded; the CLI prints it and exits."""


def _check_table(protocol: str, table: dict[str, Any]) -> None:
    allowed = PROTOCOL_SETTINGS + PROTOCOL_ONLY.get(protocol, ())
    for key in table:
        if key not in allowed:
            raise ValueError(f"[{protocol}] {key}: not a setting a protocol table can override "
                             f"(these are: {', '.join(allowed)})")


def _http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# read by the server's workers, not settings: the config file, the purge log they share (web/purge.py)
ENVIRONMENT_ONLY = ("CONFIG_FILE", "PURGE_LOG")


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """VODORIGIN_<NAME> variables, and VODORIGIN_<PROTOCOL>__<NAME> for a protocol's table; a
    variable that names no setting is an error, as an unknown key in a file is."""
    values: dict[str, Any] = {}
    for variable, raw in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable[len(ENV_PREFIX):] in ENVIRONMENT_ONLY:
            continue
        table, _, name = variable[len(ENV_PREFIX):].lower().rpartition("__")
        known = name in Settings.model_fields and name not in PROTOCOL_TABLES
        if not known or (table and table not in PROTOCOL_TABLES):
            raise SettingsError(f"{variable} names no setting")
        target = values.setdefault(table, {}) if table else values
        target[name] = _environment_value(variable, name, raw)
    return values


def _environment_value(variable: str, name: str, raw: str) -> Any:
    annotation = str(Settings.model_fields[name].annotation)
    if "tuple" in annotation:
        return [item for item in raw.replace(" ", "").split(",") if item]
    if "dict" in annotation:
        try:
            return json.loads(raw)  # e.g. VODORIGIN_HTTP_HEADERS='{"x-origin-secret": "..."}'
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{variable} is not a JSON object: {exc}") from exc
    return raw


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """File, then environment, then explicit overrides (CLI flags); later sources win."""
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            values.update(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config {path}: {exc}") from exc
        root = values.get("media_root")
        if isinstance(root, str) and not Path(root).is_absolute():  # a file's paths are its own
            values["media_root"] = str((path.resolve().parent / root).resolve())
    for name, value in _from_environment(os.environ if environ is None else environ).items():
        if name in PROTOCOL_TABLES:
            values[name] = {**values.get(name, {}), **value}
        else:
            values[name] = value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {exc}") from exc
