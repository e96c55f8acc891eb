"""URL grammar, settings sources, and the import layering the design card asks for."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import pytest

from vodorigin.errors import BadRequest
from vodorigin.media.model import Clip, MediaType, TrackSpec
from vodorigin.settings import Settings, SettingsError, load_settings
from vodorigin.urls import parse_file_name, parse_request_path

PACKAGE = Path(__file__).resolve().parent.parent / "vodorigin"


def test_urlset_and_path_parameters() -> None:
    path = "videos/clipFrom/1000/tracks/v1-a2/bbb_,600,900,k.mp4.urlset/master.m3u8"
    request = parse_request_path("hls", path)
    assert request.files == ("videos/bbb_600k.mp4", "videos/bbb_900k.mp4")
    assert request.clip == Clip(1000, None)
    assert all(part.tracks == TrackSpec(frozenset({1}), frozenset({2})) for part in request.parts)
    assert request.file_name == "master.m3u8" and request.is_urlset
    pair = parse_request_path("hls", "clip_,360,720,.mp4.urlset/x.m3u8").files
    assert pair == ("clip_360.mp4", "clip_720.mp4")
    pd = parse_request_path("pd", "a/clipTo/5000/b.mp4")
    assert pd.files == ("a/b.mp4",) and pd.clip == Clip(0, 5000) and pd.file_name == ""


@pytest.mark.parametrize(
    "path",
    ["a//b.mp4/x.m3u8", "master.m3u8", "a,b.urlset/x.m3u8", "clipFrom/1/clipFrom/2/a.mp4/x.m3u8",
     "x_," + ",".join("1" * 40) + ",.mp4.urlset/m.m3u8", "clipTo/-5/a.mp4/x.m3u8"],
)
def test_bad_paths(path: str) -> None:
    with pytest.raises(BadRequest):
        parse_request_path("hls", path)


def test_urlset_parts_carry_their_own_parameters() -> None:
    """nginx-vod-module's multi-URL: the prefix and middles may hold slashes, the postfix may be empty,
    and each expanded part is a path of its own (issue 12)."""
    path = "shows/ep1/,video.mp4,audio_jpn.mp4,lang/eng/subs_en.srt,shift/s500/lang/fra/subs_fr.vtt,.urlset"
    request = parse_request_path("hls", path + "/master.m3u8")
    assert request.files == ("shows/ep1/video.mp4", "shows/ep1/audio_jpn.mp4", "shows/ep1/subs_en.srt",
                             "shows/ep1/subs_fr.vtt")
    assert [part.language for part in request.parts] == [None, None, "en", "fr"]
    assert request.parts[3].shifts_ms == ((MediaType.SUBTITLE, 500),)
    assert request.parts[0].shifts_ms == ()
    common = parse_request_path("dash", "lang/jpn/a/,x.mp4,b/y.mp4,.urlset/manifest.mpd")
    assert common.files == ("a/x.mp4", "a/b/y.mp4") and {p.language for p in common.parts} == {"ja"}
    tracks = parse_request_path("hls", "tracks/v1-a2-t1/m.mp4/master.m3u8").parts[0].tracks
    assert tracks == TrackSpec(frozenset({1}), frozenset({2}), frozenset({1}))
    for bad in ("lang/xx/a.mp4/x.m3u8", "lang/english/a.mp4/x.m3u8", "shift/q5/a.mp4/x.m3u8",
                "shift/v5-v6/a.mp4/x.m3u8", ",clipFrom/1/a.mp4,b.mp4,.urlset/x.m3u8",
                "d/,a.mp4,/b.mp4,.urlset/x"):
        with pytest.raises(BadRequest):
            parse_request_path("hls", bad)


def test_file_name_tokens() -> None:
    name = parse_file_name("seg-12-f2-v1-a3-leng.ts", numbered=True)
    assert (name.kind, name.number, name.file_index, name.language) == ("seg", 12, 2, "en")
    assert name.tracks == TrackSpec(frozenset({1}), frozenset({3}))
    assert name.tokens == "f2-v1-a3-leng"
    assert parse_file_name("index.m3u8").tokens == ""
    assert parse_file_name("index-v0.m3u8").tracks == TrackSpec(frozenset({0}), None)
    assert parse_file_name("index-f3-t2.m3u8").tracks == TrackSpec(None, None, frozenset({2}))
    assert parse_file_name("manifest-lfra").language == "fr" and parse_file_name("manifest").extension == ""
    for bad in ("seg-1-v1x.ts", "seg--1.ts", "seg-1-f0.ts", "index-v1-v.m3u8", "seg-1.ts.ts",
                "master-lxx.m3u8"):
        with pytest.raises(BadRequest):
            parse_file_name(bad, numbered=bad.startswith("seg"))


def test_settings_sources(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('segment_duration = 6.0\nport = 9000\nbootstrap_segment_durations = [2, 2]\n')
    environ = {"VODORIGIN_SEGMENT_DURATION": "4", "VODORIGIN_BOOTSTRAP_SEGMENT_DURATIONS": "1,3"}
    settings = load_settings(config, {"port": 9100}, environ=environ)
    assert settings.segment_duration == 4.0 and settings.port == 9100
    assert settings.bootstrap_durations_ms == (1000, 3000)
    config.write_text("segment_duraton = 6\n")
    with pytest.raises(SettingsError, match="segment_duraton"):
        load_settings(config, environ={})
    with pytest.raises(SettingsError):
        load_settings(None, environ={"VODORIGIN_SEGMENT_COUNT_POLICY": "sometimes"})


def test_default_config_documents_every_setting() -> None:
    text = (PACKAGE.parent / "configs" / "local.toml").read_text()
    for name in Settings.model_fields:
        assert f"\n{name} =" in text or f"\n[{name}]" in text, f"configs/local.toml does not document {name}"
    # the defaults, its media root (relative to the file) being the fixtures
    loaded = load_settings(PACKAGE.parent / "configs" / "local.toml", environ={})
    assert loaded.model_copy(update={"media_root": "fixtures"}) == Settings()
    assert loaded.media_root_path == (PACKAGE.parent / "fixtures").resolve()


@pytest.mark.parametrize("name", ["s3.toml", "http-upstream.toml", "production.toml"])
def test_example_configs_load(name: str) -> None:
    settings = load_settings(PACKAGE.parent / "configs" / name, environ={})
    assert settings.storage in ("s3", "http") or (name, settings.workers) == ("production.toml", 4)


def test_remote_storage_needs_its_location() -> None:
    for storage in ("s3", "http"):
        with pytest.raises(SettingsError, match=f"storage = {storage}"):
            load_settings(overrides={"storage": storage}, environ={})
    headers = load_settings(environ={"VODORIGIN_HTTP_HEADERS": '{"x-origin-secret": "a"}'}).http_headers
    assert headers == {"x-origin-secret": "a"}


FORBIDDEN_IN_CORE = {"asyncio", "fastapi", "starlette", "uvicorn", "aioboto3", "httpx"}


@pytest.mark.parametrize("layer", ["mp4", "media", "mux", "packagers", "text"])
def test_core_never_does_io(layer: str) -> None:
    """mp4/, media/, mux/, packagers/, text/ are sans-IO: no event loop, no web framework, no clients."""
    for path in (PACKAGE / layer).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
                assert not name.startswith("vodorigin.web"), f"{path.name} imports {name}"


def test_packagers_do_not_import_each_other() -> None:
    """A protocol's modules (hls.py, hls_master.py...) use their own and the shared ones only."""
    shared = {"output", "shared", "renditions", "text", "playlist"}
    for path in (PACKAGE / "packagers").glob("*.py"):
        protocol = path.stem.split("_")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("vodorigin.packagers."):
                imported = module.rsplit(".", 1)[1]
                allowed = imported in shared or imported.split("_")[0] == protocol
                assert allowed, f"{path.name} imports {module}"


def test_per_request_memos_keep_short_paths_only() -> None:
    """The URL parse, file-name parse, request class and validators go through their memos for
    short paths (what a player asks again and again: up to urls.PARSED_LENGTH characters, a URL
    parse up to four times that of expanded text) and are computed afresh for longer ones, so that
    a stream of long unique URLs cannot grow them; both ways give the same answers."""
    from vodorigin import urls
    from vodorigin.media.model import SourceIdentity
    from vodorigin.web import http_cache, responses

    memos = [urls._parsed, urls._file_names, http_cache._remembered_class, responses._remembered_validators]
    source = (SourceIdentity("a.mp4", 10, 1.0, "a-1"),)

    def calls() -> list[int]:
        return [memo.cache_info().hits + memo.cache_info().misses for memo in memos]

    for long in (False, True):
        movie = ("x" * (4 * urls.PARSED_LENGTH + 1) if long else "memo") + ".mp4"  # parsed_request: 4x
        file_name = ("index-" + "v1-" * 200 if long else "index-v1") + ".m3u8"
        path = f"/hls/{movie}/index.m3u8"
        before = calls()
        rest = f"{movie}/index.m3u8"
        assert urls.parsed_request("hls", rest) == parse_request_path("hls", rest)
        with pytest.raises(BadRequest) if long else contextlib.nullcontext():
            assert parse_file_name(file_name) == urls._parse_file_name(file_name, False)
        assert http_cache.request_class(path) == "manifest"
        assert responses.Validators.of(source, path) == responses._validators(source, path, None)
        made = [after - count for after, count in zip(calls(), before, strict=True)]
        assert made == ([0, 0, 0, 0] if long else [1, 1, 1, 1]), (long, made)
