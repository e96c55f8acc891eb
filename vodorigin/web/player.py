"""The player page (/player/): the media under the default source with a link per protocol, and
hls.js / dash.js playing any pasted URL (web/player/player.js).

The player libraries come from the npm registry at setup time (player/package.json, installed by
scripts/setup.sh into player/node_modules) and are served from there: nothing is loaded from a
CDN at run time. Without them the page still lists the media and says what is missing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from vodorigin.errors import NotFound
from vodorigin.settings import Settings
from vodorigin.web.responses import error_response

PAGE = Path(__file__).resolve().parent / "player"
PAGE_FILES = {"": "index.html", "index.html": "index.html", "player.js": "player.js",
              "player.css": "player.css"}
LIBRARIES = {"hls.min.js": "hls.js/dist/hls.min.js",
             "dash.all.min.js": "dashjs/dist/modern/umd/dash.all.min.js",
             "dash.mss.min.js": "dashjs/dist/modern/umd/dash.mss.min.js"}  # defines dashjs.MssHandler
MEDIA_SUFFIXES = (".mp4", ".m4a", ".m4v", ".mov")
MAX_LISTED = 500
NO_CACHE = {"cache-control": "no-cache"}


def player_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    libraries = Path(settings.player_libs_dir).resolve()

    @router.get("/player", include_in_schema=False)
    async def player_root() -> Response:
        return RedirectResponse("/player/", status_code=301)

    @router.get("/player/media.json")
    async def media() -> Response:
        return JSONResponse({"media": list_media(settings)}, headers=NO_CACHE)

    @router.get("/player/lib/{name}")
    async def library(name: str) -> Response:
        if name not in LIBRARIES:
            return error_response(NotFound(f"no player library {name!r}"))
        path = libraries / LIBRARIES[name]
        if not path.is_file():
            missing = NotFound(f"{name} is not installed: run scripts/setup.sh (npm install in player/)")
            return error_response(missing)
        return FileResponse(path, media_type="text/javascript", headers=NO_CACHE)

    @router.get("/player/{name:path}")
    async def page(name: str) -> Response:
        if name not in PAGE_FILES:
            return error_response(NotFound(f"no player file {name!r}"))
        return FileResponse(PAGE / PAGE_FILES[name], headers=NO_CACHE)

    return router


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (RuntimeError, OSError):
        return False


def list_media(settings: Settings) -> list[dict[str, object]]:
    """Media files under the local media root (two directory levels), with a URL per protocol."""
    if settings.storage != "local":
        return []
    root = settings.media_root_path
    found = []
    for depth in ("*", "*/*", "*/*/*"):
        found += [p for p in root.glob(depth) if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file()]
    entries: list[dict[str, object]] = []
    for path in sorted(found)[:MAX_LISTED]:
        if not _inside(path, root):
            continue  # reached through a symlink that leaves the root: storage would refuse it
        relative = path.relative_to(root).as_posix()
        urls = {"hls": f"/hls/{relative}/master.m3u8", "dash": f"/dash/{relative}/manifest.mpd",
                "mss": f"/mss/{relative}/manifest", "hds": f"/hds/{relative}/manifest.f4m",
                "pd": f"/pd/{relative}"}
        entries.append({"path": relative, "urls": urls})
    return entries
