"""Site lists from the map page: filter, rank, highlight and download, offline, with no server.

The PV map carries the ranked rooftop site list and the ecology map the afforestation candidates
as a compact table: the rows' CSV text exactly as :func:`gis.sites.export` writes it (one
formatter, :func:`gis.sites.csv_text`), the few columns the filters read, and the ranking orders
computed by :func:`gis.sites.select_sites` itself.  The page's script filters and slices that
table; a download is the header plus the chosen rows (renumbered for the site list, as
``gis-planner sites`` does), so it equals the command line's file with the same filters, byte for
byte, UTF-8 with a byte-order mark.

The table travels gzip-compressed and base64-encoded (the browser inflates it with
``DecompressionStream``).  Inside a run the rows are not formatted twice: the panel takes the bytes
of the ``.csv`` export the run wrote moments before (``csv_file``), once they are checked to be the
text :func:`gis.sites.csv_text` gives for the same rows.  When the page would grow past :data:`PAGE_BUDGET_BYTES` with it,
:func:`split_to_budget` moves it into a script file beside the page (``<page>.<key>.js``), which a
page opened from ``file://`` loads like any script.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from gis import sites
from gis._templates import render
from gis.config import CATEGORIES, CATEGORY_ZH

#: Largest page written with its site table inside [bytes] (DESIGN §4.4: ≤ 10 MB per page).
PAGE_BUDGET_BYTES = 10_000_000

#: Ranking keys of the rooftop site list, with their labels on the page.
RANK_LABELS = {
    "annual_kwh": "年发电量 annual kWh",
    "capacity_kwp": "装机容量 kWp",
    "specific_yield_kwh_kwp": "单位发电量 kWh/kWp",
}
#: Orders of the afforestation list: its own rank (suitability, then size) or area.
AFFORESTATION_ORDERS = {"rank": "排名 rank (suitability)", "area_ha": "面积 area [ha]"}
#: Ring colour of the chosen rows on each map (English and Chinese names for the page): a hue
#: the map's own classes do not use (YlOrRd buildings and blue top sites; pink candidates).
_RINGS = {"pv": ("#d4007f", "magenta", "品红"), "afforestation": ("#0050b4", "blue", "蓝")}

_CONTROL_BYTES = bytes(range(32))
_BLOCK = re.compile(r"<!--gp-site-data:(?P<key>[a-z]+)-->(?P<script><script>.*?</script>)"
                    r"<!--/gp-site-data-->", re.S)


# ---------------------------------------------------------------------------------------------
# tables


def _codes(values: pd.Series) -> dict:
    """A text column as codes into its distinct values (missing = -1)."""
    codes, uniques = pd.factorize(values.astype("string"), sort=True)
    return {"values": [str(v) for v in uniques], "codes": codes.tolist()}


def _numbers(values: pd.Series) -> list:
    """Numbers for JSON: exact doubles (shortest round-trip text); missing → null."""
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    return x.astype(object).where(x.notna(), None).tolist()


#: gzip level of the site tables: level 1 is four times as fast as 6 on the demo's 31 MB
#: table, for 10 % more bytes (bench/README.md, "Maps and report").  The stream comes from
#: ISA-L (:mod:`isal`, a dependency) when installed: its level 1 is ≈ 3× as fast as zlib's and
#: 4 % smaller on the demo's table; both are plain gzip that every browser inflates.
GZIP_LEVEL = 1


def _payload(table: Mapping) -> str:
    """JSON → gzip (no timestamp, so equal tables give equal pages) → base64."""
    return _packed(_table_json(table))


def _packed(raw: bytes) -> str:
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        packed = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    else:
        packed = igzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _payload_later(table: Mapping) -> Future:
    """:func:`_payload` with the compression in a thread of its own (zlib releases the GIL, so
    on two cores it runs while the rest of the map is built); the page takes the result."""
    raw = _table_json(table)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gis-site-table")
    try:
        return pool.submit(_packed, raw)
    finally:
        pool.shutdown(wait=False)


def _table_json(table: Mapping) -> bytes:
    """``json.dumps(table, ensure_ascii=False, separators=(",", ":"))`` as UTF-8, with the CSV
    body (tens of MB) escaped by whole-buffer byte replacements instead of the encoder's scan
    (UTF-8 multi-byte sequences hold no ASCII bytes, so replacing ASCII bytes is exact).

    Examples
    --------
    >>> t = {"header": "a,b", "body": '1,"x\\\\y ""q"" \\t"\\n中', "renumber": True}
    >>> _table_json(t) == json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode()
    True
    """
    dumps = {"ensure_ascii": False, "separators": (",", ":")}
    body = table.get("body")
    if not isinstance(body, str) or list(table)[:2] != ["header", "body"]:
        return json.dumps(table, **dumps).encode("utf-8")
    raw = body.encode("utf-8")
    text = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    if len(text.translate(None, _CONTROL_BYTES)) != len(text):  # tabs … in quoted fields: rare
        text = json.dumps(body, **dumps)[1:-1].encode("utf-8")
    rest = {k: v for k, v in table.items() if k not in ("header", "body")}
    head = json.dumps({"header": table["header"]}, **dumps)[:-1] + ',"body":"'
    tail = '"' + ("," + json.dumps(rest, **dumps)[1:] if rest else "}")
    return head.encode("utf-8") + text + tail.encode("utf-8")


def list_text(rows: pd.DataFrame, csv_file: str | Path | None = None) -> str:
    """The ``.csv`` text of a list (:func:`gis.sites.csv_text`), read back when already written.

    Parameters
    ----------
    rows : GeoDataFrame
        The list's rows, in order.
    csv_file : str or Path, optional
        The list's ``.csv`` export written by :func:`gis.sites.export` from these rows.  Its
        text (without the byte-order mark) is used when its header, first two rows, last row
        and number of lines are those :func:`gis.sites.csv_text` gives for ``rows``; otherwise,
        or when the file is missing, the rows are formatted.

    Returns
    -------
    str
    """
    if csv_file is not None and Path(csv_file).is_file() and len(rows) >= 1:
        text = Path(csv_file).read_bytes().decode("utf-8").removeprefix("\ufeff")
        head = sites.csv_text(rows.iloc[:2])
        tail = _body(sites.csv_text(rows.iloc[-1:]))[1]
        if (text.startswith(head) and text.endswith(tail)
                and text.count("\n") == len(rows) + 1):
            return text
    return sites.csv_text(rows)


def _orders(pv: pd.DataFrame, ranked: pd.DataFrame, keys) -> dict[str, list[int]]:
    """Row positions of ``ranked`` in :func:`gis.sites.select_sites` order for each key.

    Only the columns the ranking reads are passed, in the rows' order in ``pv`` (ties of key
    and id then fall as they do on the whole layer).
    """
    position = pd.Series(np.arange(len(ranked)), index=ranked.index)
    in_pv = ranked.iloc[np.argsort(pv.index.get_indexer(ranked.index), kind="stable")]
    out = {}
    for key in keys:
        cols = [c for c in dict.fromkeys(("id", "capacity_kwp", key)) if c in ranked.columns]
        out[key] = position.loc[sites.select_sites(pd.DataFrame(in_pv[cols]),
                                                   rank_by=key).index].tolist()
    return out


def _body(text: str) -> tuple[str, str]:
    """(header, rows) of a CSV text: the first line and everything after it."""
    header, _, body = text.partition("\n")
    return header, body


def site_table(pv: gpd.GeoDataFrame, *, ranked: gpd.GeoDataFrame | None = None,
               csv_file: str | Path | None = None) -> dict:
    """The rooftop site list as the PV map carries it.

    Parameters
    ----------
    pv : GeoDataFrame
        ``buildings_pv`` (as :func:`gis.sites.select_sites` takes it).
    ranked : GeoDataFrame, optional
        ``gis.sites.select_sites(pv)`` when the caller has it already (a run's exports do);
        used when it holds the same number of sites.
    csv_file : str or Path, optional
        The ``.csv`` export of ``ranked`` (``sites.csv``), read instead of formatting the rows
        again (see :func:`list_text`).

    Returns
    -------
    dict
        ``header`` and ``body`` (the CSV text of every site, best annual yield first, as
        ``gis-planner sites`` writes it), ``renumber`` (the first cell is the rank, rewritten
        after filtering), ``orders`` (row positions for each ranking key; ``null`` = as stored),
        and ``columns`` for the filters: ``street`` and ``category`` (codes into values),
        ``capacity_kwp`` [kWp], ``is_new`` and ``without_pv`` (0/1, ``null`` when the layer has
        no such column).

    Examples
    --------
    >>> import shapely
    >>> pv = gpd.GeoDataFrame(
    ...     {"id": ["A", "B", "C"], "street": ["金桥街道", "华明街道", "金桥街道"],
    ...      "category": ["industrial", "public", "residential"],
    ...      "capacity_kwp": [120.0, 300.0, 0.0], "annual_kwh": [156000.0, 390000.0, 0.0],
    ...      "specific_yield_kwh_kwp": [1300.0, 1300.0, 1300.0], "pv_kw": [0.0, 10.0, 0.0]},
    ...     geometry=[shapely.box(534000 + 100 * i, 4331000, 534040 + 100 * i, 4331030)
    ...               for i in range(3)], crs="EPSG:4548")
    >>> t = site_table(pv)
    >>> t["header"][:60]
    'rank,id,street,category,capacity_kwp,annual_kwh,specific_yie'
    >>> [row.split(",")[:2] for row in t["body"].splitlines()]
    [['1', 'B'], ['2', 'A']]
    >>> t["orders"]["capacity_kwp"], t["columns"]["without_pv"], t["columns"]["is_new"]
    ([0, 1], [0, 1], None)
    """
    with_pv = int((pd.to_numeric(pv["capacity_kwp"], errors="coerce") > 0).sum())
    if (ranked is None or len(ranked) != with_pv or not pv.index.is_unique
            or not ranked.index.isin(pv.index).all()):
        pv = pv.reset_index(drop=True)
        ranked = sites.select_sites(pv)  # csv_file is still checked against these rows
    header, body = _body(list_text(ranked, csv_file))
    orders: dict[str, list[int] | None] = {"annual_kwh": None}
    orders.update(_orders(pv, ranked, [k for k in RANK_LABELS
                                       if k != "annual_kwh" and k in pv.columns]))
    if "pv_kw" in ranked.columns:
        installed = pd.to_numeric(ranked["pv_kw"], errors="coerce").fillna(0.0)
        without_pv = (installed <= 0).astype(int).tolist()
    else:  # nothing installed is recorded: every site counts as without PV (as in the CLI)
        without_pv = [1] * len(ranked)
    is_new = (ranked["is_new"].fillna(False).astype(bool).astype(int).tolist()
              if "is_new" in ranked.columns else None)
    columns = {
        "street": _codes(ranked["street"]) if "street" in ranked.columns else None,
        "category": _codes(ranked["category"]) if "category" in ranked.columns else None,
        "capacity_kwp": _numbers(ranked["capacity_kwp"]),
        "is_new": is_new,
        "without_pv": without_pv,
    }
    return {"header": header, "body": body, "renumber": True, "orders": orders,
            "columns": columns}


def afforestation_table(candidates: gpd.GeoDataFrame, *,
                        csv_file: str | Path | None = None) -> dict:
    """The afforestation candidates as the ecology map carries them.

    The rows are those of ``afforestation.csv`` in its order; a download keeps each parcel's
    rank and cumulative area (they describe the full list that closes the gap).  ``csv_file``:
    that file when already written (see :func:`list_text`).

    Returns
    -------
    dict
        As :func:`site_table`, with ``renumber`` false, orders ``rank`` (as stored) and
        ``area_ha`` (largest first, ties in list order), and columns ``zone``, ``target_id``
        (codes) and ``area_ha`` [ha].
    """
    cands = candidates.reset_index(drop=True)
    header, body = _body(list_text(cands, csv_file))
    orders: dict[str, list[int] | None] = {"rank": None}
    if "area_ha" in cands.columns:
        area = pd.to_numeric(cands["area_ha"], errors="coerce")
        orders["area_ha"] = area.sort_values(ascending=False, kind="mergesort",
                                             na_position="last").index.tolist()
    columns = {
        "zone": _codes(cands["zone"]) if "zone" in cands.columns else None,
        "target_id": _codes(cands["target_id"]) if "target_id" in cands.columns else None,
        "area_ha": _numbers(cands["area_ha"]) if "area_ha" in cands.columns else None,
    }
    return {"header": header, "body": body, "renumber": False, "orders": orders,
            "columns": columns}


# ---------------------------------------------------------------------------------------------
# controls


def _site_controls(pv: pd.DataFrame, table: Mapping) -> dict:
    streets = (sorted(pv["street"].dropna().astype(str).unique().tolist())
               if "street" in pv.columns else [])
    cols = table["columns"]
    return {
        "key": "pv", "prefix": "site", "title": "站点清单 Site list",
        "unit": "个站点 sites", "filename": "sites_selection.csv",
        "selects": [
            {"column": "street", "testid": "site-filter-street", "label": "街道 street",
             "options": [(s, s) for s in streets], "disabled": cols["street"] is None},
            {"column": "category", "testid": "site-filter-category", "label": "类别 category",
             "options": [(c, f"{CATEGORY_ZH.get(c, '')} {c}".strip()) for c in CATEGORIES],
             "disabled": cols["category"] is None},
        ],
        "minimum": {"column": "capacity_kwp", "testid": "site-filter-min-kwp",
                    "label": "最小装机 min. capacity [kWp]"},
        "flags": [
            {"column": "is_new", "testid": "site-filter-new-only",
             "label": "仅新建公共与厂房建筑 new public and factory buildings only",
             "disabled": cols["is_new"] is None},
            {"column": "without_pv", "testid": "site-filter-without-pv",
             "label": "尚未安装光伏 without existing PV", "disabled": False},
        ],
        "rank": {"testid": "site-rank-by",
                 "options": [(k, v) for k, v in RANK_LABELS.items() if k in table["orders"]]},
    }


def _afforestation_controls(table: Mapping) -> dict:
    cols = table["columns"]
    selects = []
    if cols["zone"] is not None:
        selects.append({"column": "zone", "testid": "aff-filter-zone", "label": "分区 zone",
                        "options": [(z, z) for z in cols["zone"]["values"]], "disabled": False})
    if cols["target_id"] is not None and len(cols["target_id"]["values"]) > 1:
        selects.append({"column": "target_id", "testid": "aff-filter-target",
                        "label": "目标 target",
                        "options": [(t, t) for t in cols["target_id"]["values"]],
                        "disabled": False})
    return {
        "key": "afforestation", "prefix": "aff", "title": "造林候选清单 Afforestation list",
        "unit": "个地块 parcels", "filename": "afforestation_selection.csv",
        "selects": selects,
        "minimum": ({"column": "area_ha", "testid": "aff-filter-min-ha",
                     "label": "最小面积 min. area [ha]"} if cols["area_ha"] is not None else None),
        "flags": [],
        "rank": {"testid": "aff-rank-by",
                 "options": [(k, v) for k, v in AFFORESTATION_ORDERS.items()
                             if k in table["orders"]]},
    }


def _add(m: folium.Map, controls: dict, table: Mapping) -> None:
    from gis.maps import RawHtml

    # the payload (MB) goes in when the page renders, not through the template's escaping
    placeholder = "\x02gp-site-table\x03"
    html = render("map/site_panel.html", panel={**controls, "ring": _RINGS[controls["key"]]},
                  data=placeholder)
    m.get_root().html.add_child(RawHtml(html, data={placeholder: _payload_later(table)}),
                                name=f"gp_sites_{controls['key']}")


def add_site_panel(m: folium.Map, pv: gpd.GeoDataFrame, *,
                   ranked: gpd.GeoDataFrame | None = None,
                   csv_file: str | Path | None = None) -> None:
    """Put the rooftop site-list panel on a map (see the module's description).

    The controls carry ``data-testid`` attributes: ``site-filter-street``,
    ``site-filter-category``, ``site-filter-min-kwp``, ``site-filter-new-only``,
    ``site-filter-without-pv``, ``site-rank-by``, ``site-top``, ``site-count`` and
    ``site-download``.  ``ranked`` and ``csv_file``: as for :func:`site_table`.
    """
    table = site_table(pv, ranked=ranked, csv_file=csv_file)
    _add(m, _site_controls(pv, table), table)


def add_afforestation_panel(m: folium.Map, candidates: gpd.GeoDataFrame, *,
                            csv_file: str | Path | None = None) -> None:
    """Put the afforestation-list panel on a map: filter by zone (and target when there are
    several), minimum area [ha], order by rank or area, first N; ``data-testid`` prefix ``aff-``.
    ``csv_file``: ``afforestation.csv`` when already written (see :func:`list_text`).
    """
    table = afforestation_table(candidates, csv_file=csv_file)
    _add(m, _afforestation_controls(table), table)


# ---------------------------------------------------------------------------------------------
# page budget


def split_to_budget(page: str, path: str | Path, *, budget: int = PAGE_BUDGET_BYTES,
                    size: int | None = None) -> tuple[str, dict[Path, str]]:
    """Move the site tables out of a page that would be larger than ``budget`` bytes.

    Parameters
    ----------
    page : str
        A rendered map page.
    path : str or Path
        Where the page will be written; a table moves to ``<stem>.<key>.js`` beside it.
    budget : int
        Largest page [bytes] that keeps its tables inside.
    size : int, optional
        The page's size [bytes] when ``page`` holds short tokens for its large texts
        (:func:`gis.maps.save_map`); default: the size of ``page``.

    Returns
    -------
    (str, dict)
        The page, and the script files to write beside it (path → text); empty when the page
        fits.

    Examples
    --------
    >>> page = ("<p>map</p><!--gp-site-data:pv--><script>T['pv']='QUJD';</script>"
    ...         "<!--/gp-site-data-->")
    >>> split_to_budget(page, "out/pv_map.html")[1]
    {}
    >>> small, files = split_to_budget(page, "out/pv_map.html", budget=20)
    >>> small
    '<p>map</p><script src="pv_map.pv.js"></script>'
    >>> files
    {PosixPath('out/pv_map.pv.js'): "T['pv']='QUJD';"}
    """
    path = Path(path)
    if (len(page.encode("utf-8")) if size is None else size) <= budget:
        return page, {}
    files: dict[Path, str] = {}

    def move(match: re.Match) -> str:
        name = f"{path.stem}.{match['key']}.js"
        files[path.with_name(name)] = match["script"][len("<script>"):-len("</script>")]
        return f'<script src="{name}"></script>'

    return _BLOCK.sub(move, page), files


__all__ = ["PAGE_BUDGET_BYTES", "add_afforestation_panel", "add_site_panel",
           "afforestation_table", "list_text", "site_table", "split_to_budget"]
