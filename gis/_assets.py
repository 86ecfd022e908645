"""Offline map assets: inline Leaflet and its plugins into a page so it needs no network.

The JavaScript and CSS are npm packages installed once by ``scripts/install_assets.sh`` into a
cache directory (``$GIS_PLANNER_ASSETS``, default ``~/.cache/gis-planner/assets``); they are never
committed.  :func:`inline` replaces every ``<script src=...>`` and ``<link href=...>`` that folium
writes with the content of the matching installed file, and turns the images and fonts those style
sheets point at into ``data:`` URIs.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import re
from pathlib import Path

from gis._errors import InputError, Problem

#: What folium 0.20 links to (folium/folium.py, folium/plugins/*.py) → the npm file that holds the
#: same code, relative to ``<assets>/node_modules``.  Matched on the URL's tail so that a CDN
#: change of host does not matter; the versions are pinned in scripts/install_assets.sh.
_SOURCES: dict[str, str] = {
    "npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/dist/leaflet.js",
    "npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/dist/leaflet.css",
    "jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": "leaflet.awesome-markers/dist/leaflet.awesome-markers.min.js",
    "Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    "npm/leaflet-search@2.9.7/dist/leaflet-search.min.js": "leaflet-search/dist/leaflet-search.min.js",
    "npm/leaflet-search@2.9.7/dist/leaflet-search.min.css": "leaflet-search/dist/leaflet-search.min.css",
    "npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js": "leaflet.fullscreen/Control.FullScreen.js",
    "npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css": "leaflet.fullscreen/Control.FullScreen.css",
    "leaflet-measure@2.1.7/dist/leaflet-measure.min.js": "leaflet-measure/dist/leaflet-measure.min.js",
    "leaflet-measure@2.1.7/dist/leaflet-measure.min.css": "leaflet-measure/dist/leaflet-measure.css",
    "leaflet-minimap/3.6.1/Control.MiniMap.js": "leaflet-minimap/dist/Control.MiniMap.min.js",
    "leaflet-minimap/3.6.1/Control.MiniMap.css": "leaflet-minimap/dist/Control.MiniMap.min.css",
}

INSTALL_HINT = "run scripts/install_assets.sh (or set GIS_PLANNER_ASSETS to where you installed them)"

_SCRIPT_RE = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"'][^>]*>\s*</script>", re.I)
_LINK_RE = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']([^\"']+)[\"'][^>]*/?>", re.I)
_CSS_URL_RE = re.compile(r"url\(\s*([\"']?)([^)\"']+)\1\s*\)")


def assets_dir() -> Path:
    """Where the offline assets are installed: ``$GIS_PLANNER_ASSETS`` or the user cache."""
    env = os.environ.get("GIS_PLANNER_ASSETS")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "gis-planner" / "assets"
    return base / "node_modules"


def _resolve(url: str, root: Path) -> Path:
    for tail, rel in _SOURCES.items():
        if url.endswith(tail):
            path = root / rel
            if not path.is_file():
                raise InputError(
                    Problem(
                        f"offline assets not installed: {path} is missing",
                        hint=INSTALL_HINT,
                        value=url,
                    )
                )
            return path
    raise InputError(
        Problem(
            "offline map links to an asset with no installed copy",
            hint="drop the element that needs it, or add it to gis/_assets.py and "
            "scripts/install_assets.sh",
            value=url,
        )
    )


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or {
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
    }.get(path.suffix, "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """CSS text with every relative ``url(...)`` that exists turned into a data: URI."""
    css = path.read_text(encoding="utf-8")

    def repl(match: re.Match) -> str:
        ref = match.group(2).strip()
        if ref.startswith(("data:", "#")):
            return match.group(0)
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        if ref.startswith(("http:", "https:", "//")) or not target.is_file():
            # A reference nothing can satisfy offline (old IE behaviours, missing extras) is
            # dropped rather than left for the browser to fetch.
            return "none"
        return f'url("{_data_uri(target)}")'

    return _CSS_URL_RE.sub(repl, css)


def _script_safe(text: str) -> str:
    # A literal "</script" or "</style" inside inlined code would end the element early.
    return re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.I)


def inline(html: str, *, root: Path | None = None) -> str:
    """Replace every external script and style sheet of ``html`` with inline content.

    Parameters
    ----------
    html : str
        A rendered page (``folium.Map.get_root().render()``).
    root : Path, optional
        The ``node_modules`` folder of the installed assets; default :func:`assets_dir`.

    Returns
    -------
    str
        The page with no ``src``/``href`` pointing to the network for scripts and style sheets.

    Raises
    ------
    InputError
        When the assets are not installed ("offline assets not installed: run
        scripts/install_assets.sh") or the page links to an asset with no known installed copy.
    """
    root = Path(root) if root is not None else assets_dir()
    if not root.is_dir():
        raise InputError(
            Problem(f"offline assets not installed: {root} does not exist", hint=INSTALL_HINT)
        )

    def script(match: re.Match) -> str:
        path = _resolve(match.group(1), root)
        return "<script>" + _script_safe(path.read_text(encoding="utf-8")) + "</script>"

    def link(match: re.Match) -> str:
        tag = match.group(0)
        if not re.search(r"rel\s*=\s*[\"']?stylesheet", tag, re.I):
            return tag
        path = _resolve(match.group(1), root)
        return "<style>" + _script_safe(_inline_css(path)) + "</style>"

    html = _SCRIPT_RE.sub(script, html)
    return _LINK_RE.sub(link, html)
