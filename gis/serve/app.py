"""The workspace's pages and requests (Flask; templates in ``gis/serve/templates``).

Every path a request names goes through :func:`gis.serve.workspace.inside`; anything outside the
project folder is answered with 403.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from flask import (
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import PathConverter

from gis._errors import InputError
from gis.config import LAYER_KINDS, RASTER_KINDS, SCHEMES
from gis.serve import workspace as ws
from gis.serve.runner import Runner

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
DEFAULT_MAX_UPLOAD_MB = 512


class _AnyPath(PathConverter):
    """Every path, also one with a leading slash, so that the view (not the router) refuses it."""

    regex = ".*"
    part_isolating = False


def create_app(project_dir: str | Path, *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               loopback_only: bool = True) -> Flask:
    """The workspace app for one project folder.

    Parameters
    ----------
    project_dir : str or Path
        The project folder: layers, the run file ``run.toml`` and the outputs (``output/``) live
        here, and nothing is read or written outside it.
    max_upload_mb : float
        The largest upload accepted [MB]; larger ones are answered with 413.
    loopback_only : bool
        Refuse requests whose ``Host`` is not the loopback address (against DNS rebinding).

    Returns
    -------
    Flask
        The app; ``app.config["RUNNER"]`` runs one run at a time.
    """
    root = Path(project_dir).resolve()
    if not root.is_dir():
        raise InputError(f"the project folder does not exist: {root}")
    app = Flask(__name__)
    app.url_map.converters["anypath"] = _AnyPath
    app.config.update(PROJECT=root, MAX_CONTENT_LENGTH=int(max_upload_mb * 1024 * 1024),
                      MAX_UPLOAD_MB=max_upload_mb, RUNNER=Runner(), LOOPBACK_ONLY=loopback_only,
                      SECRET_KEY=_secret(), TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.autoescape = True  # every template, whatever its name
    from gis.config import CATEGORY_ZH, LEVEL_ZH

    app.jinja_env.globals.update(KIND_LABELS=ws.KIND_LABELS, COLUMN_LABELS=ws.COLUMN_LABELS,
                                 project_name=root.name,
                                 VALUE_ZH={**CATEGORY_ZH, **LEVEL_ZH, "flat": "平屋顶",
                                           "pitched": "坡屋顶", "true": "是", "false": "否"})
    _register(app)
    return app


def _secret() -> bytes:
    import secrets

    return secrets.token_bytes(32)


def _root() -> Path:
    from flask import current_app

    return current_app.config["PROJECT"]


def _runner() -> Runner:
    from flask import current_app

    return current_app.config["RUNNER"]


def _register(app: Flask) -> None:
    app.before_request(_guard_request)
    app.register_error_handler(ws.Forbidden, _forbidden)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(InputError, _bad_input)
    for rule, view, methods in (
        ("/", home, ["GET"]),
        ("/upload", upload, ["POST"]),
        ("/settings", settings, ["POST"]),
        ("/layers/<kind>", layer_page, ["GET", "POST"]),
        ("/validate", validate_page, ["POST"]),
        ("/run", start_run, ["POST"]),
        ("/progress", progress_page, ["GET"]),
        ("/status", status, ["GET"]),
        ("/outputs", outputs_page, ["GET"]),
        ("/sites", download_sites, ["GET"]),
        ("/compare", compare_page, ["GET"]),
        ("/files/<anypath:rel>", project_file, ["GET"]),
    ):
        app.add_url_rule(rule, view.__name__, view, methods=methods)


def _guard_request():
    """Loopback hosts only (DNS rebinding); form posts only from the workspace's own pages."""
    from flask import current_app

    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    if current_app.config["LOOPBACK_ONLY"] and host not in LOOPBACK_NAMES:
        abort(403, description=f"the workspace answers on the loopback address only, not {host!r}")
    if request.method == "POST":
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            abort(403, description="a form from another site cannot post to the workspace")


def _forbidden(exc: ws.Forbidden):
    return render_template("message.html", title="403 refused",
                           message=f"{exc}: the workspace reads and writes only inside "
                                   f"{_root()}"), 403


def _bad_input(exc: InputError):
    return render_template("message.html", title="400 bad input",
                           problems=[str(p) for p in exc.problems]), 400


def _too_large(exc: RequestEntityTooLarge):
    from flask import current_app

    limit = current_app.config["MAX_UPLOAD_MB"]
    return render_template("message.html", title="413 upload too large",
                           message=f"the upload is larger than the limit of {limit:g} MB: "
                                   "copy the file into the project folder instead, or start the "
                                   "workspace with a larger --max-upload-mb"), 413


# --------------------------------------------------------------------------------------------
# the workspace page


def home():
    root = _root()
    raw = ws.read_runfile(root)
    files = ws.project_files(root)
    from gis.targets import preset_names

    layers = raw.get("layers", {})
    return render_template(
        "home.html", root=root, raw=raw, files=files, layers=layers, kinds=LAYER_KINDS,
        presets=preset_names(), pv_presets=ws.PV_PRESETS,
        targets_files=[f.rel for f in files if f.kind == "targets"],
        weather_files=[f.rel for f in files if f.kind == "weather"],
        has_runfile=(root / ws.RUNFILE).is_file(), status=_runner().status(),
        outside=ws.outside_paths(root, raw), max_upload_mb=_max_upload())


def _max_upload() -> float:
    from flask import current_app

    return current_app.config["MAX_UPLOAD_MB"]


def upload():
    root = _root()
    folder = request.form.get("folder", "").strip()
    target_dir = ws.inside(root, folder) if folder else root
    saved = []
    for item in request.files.getlist("files"):
        name = Path(str(item.filename or "").replace("\\", "/")).name
        if not name or name in (".", "..") or name.startswith("."):
            continue
        dest = ws.inside(root, (target_dir / name).relative_to(root).as_posix())
        if dest.parent.name in (ws.OUTPUT, ws.OUTPUT + ".previous") and dest.parent.parent == root:
            raise ws.Forbidden("uploads do not go into the output folders")
        dest.parent.mkdir(parents=True, exist_ok=True)
        from gis import io

        with io.atomic_path(dest) as tmp:
            item.save(tmp)
        saved.append(dest.relative_to(root).as_posix())
    flash(f"uploaded: {', '.join(saved)}" if saved else "no file chosen")
    return redirect(url_for("home"))


def settings():
    root = _root()
    raw = ws.read_runfile(root)
    form = request.form
    project = raw.setdefault("project", {})
    project["name"] = form.get("name", "").strip() or root.name
    crs = form.get("crs", "").strip()
    if crs:
        project["crs"] = crs
    else:
        project.pop("crs", None)
    targets = form.get("targets", "").strip()
    from gis.targets import preset_names

    if targets and targets not in preset_names():
        ws.inside(root, targets)
    project["targets"] = targets or "dongli-2025"
    project["synthetic"] = form.get("synthetic") == "on"
    if not project["synthetic"]:
        project.pop("synthetic")
    raw.setdefault("pv", {})["preset"] = form.get("pv_preset", "base")
    weather = form.get("weather", "").strip()
    if weather:
        ws.inside(root, weather)
        raw["weather"] = {"epw": weather}
    else:
        raw.pop("weather", None)
    raw.setdefault("output", {})["offline"] = form.get("offline") == "on"
    ws.write_runfile(root, raw)
    flash("settings saved to run.toml")
    return redirect(url_for("home"))


# --------------------------------------------------------------------------------------------
# a layer: file, columns, values


def layer_page(kind: str):
    if kind not in LAYER_KINDS:
        abort(404)
    root = _root()
    raw = ws.read_runfile(root)
    if request.method == "POST":
        _save_layer(root, raw, kind, request.form)
        return redirect(url_for("layer_page", kind=kind))
    table = raw.get("layers", {}).get(kind, {})
    files = [f.rel for f in ws.project_files(root)
             if f.kind == ("raster" if kind in RASTER_KINDS else "vector")
             and not f.rel.lower().endswith((".dbf", ".shx"))]
    context: dict[str, Any] = {"kind": kind, "table": table, "files": files,
                               "raster": kind in RASTER_KINDS, "schemes": SCHEMES,
                               "csv_files": [f.rel for f in ws.project_files(root)
                                             if f.kind == "table"]}
    path_rel = table.get("path")
    if path_rel and kind not in RASTER_KINDS:
        context.update(_columns_context(root, kind, table, path_rel))
    return render_template("layer.html", **context)


def _columns_context(root: Path, kind: str, table: dict, path_rel: str) -> dict[str, Any]:
    from gis.validate import recognise_columns, suggest_values

    path = ws.inside(root, path_rel)
    names = ws.layer_names(path)
    read = {"layer": table.get("layer") or None, "encoding": table.get("encoding")}
    try:
        # the first rows for the columns and their samples; whole columns only where values
        # are mapped (a district's 10^5 buildings stay quick to show)
        frame = ws.read_attributes(path, **read, max_rows=2000)
        n_features = ws.feature_count(path, layer=read["layer"])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return {"read_error": f"cannot read {path_rel}: {exc}", "layer_names": names}
    columns = [str(c) for c in frame.columns]
    suggested = recognise_columns(kind, columns, suggest=True)
    examples = ws.samples(frame)
    required, optional = ws.canonical_columns(kind)
    mapped = table.get("columns", {})
    rows = [{"canon": canon, "required": canon in required,
             "current": mapped.get(canon, suggested.get(canon, "") if not mapped else ""),
             "suggested": suggested.get(canon, "")}
            for canon in required + optional]
    value_maps = []
    for row in rows:
        spec = ws.VALUE_MAPS.get((kind, row["canon"]))
        col = row["current"]
        if spec is None or not col or col not in frame:
            continue
        where, options = spec
        whole = ws.read_attributes(path, **read, columns=[col]) if len(frame) == 2000 else frame
        counts = ws.distinct_values(whole, col)
        suggestion = suggest_values(kind, row["canon"], counts["value"])
        saved = (table.get("categories", {}) if where == "categories"
                 else table.get("values", {}).get(row["canon"], {}))
        saved = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in saved.items()}
        value_maps.append({
            "canon": row["canon"], "column": col, "options": options,
            "rows": [{"value": v, "count": int(n), "suggested": "" if pd.isna(s) else str(s),
                      "current": saved.get(v, "" if pd.isna(s) else str(s))}
                     for v, n, s in zip(counts["value"], counts["count"], suggestion,
                                        strict=True)]})
    return {"layer_names": names, "columns": columns, "examples": examples, "rows": rows,
            "value_maps": value_maps, "n_features": n_features}


def _save_layer(root: Path, raw: dict, kind: str, form) -> None:
    layers = raw.setdefault("layers", {})
    action = form.get("action", "save")
    if action == "remove":
        layers.pop(kind, None)
        ws.write_runfile(root, raw)
        flash(f"{kind} layer removed from run.toml")
        return
    table = layers.setdefault(kind, {})
    path_rel = form.get("path", "").strip()
    if not path_rel:
        flash("choose a file")
        return
    ws.inside(root, path_rel)
    if action == "file" or path_rel != table.get("path"):
        layers[kind] = table = {"path": path_rel}
        names = ws.layer_names(ws.inside(root, path_rel))
        if len(names) > 1:
            table["layer"] = kind if kind in names else names[0]
        if kind == "landuse":
            table["scheme"] = "osm" if path_rel.lower().endswith((".osm", ".pbf")) else "gbt21010"
        ws.write_runfile(root, raw)
        flash(f"{path_rel} chosen for {kind}: map its columns below and save")
        return
    for key in ("layer", "encoding", "crs", "scheme"):
        value = form.get(key, "").strip()
        if value:
            table[key] = value
        else:
            table.pop(key, None)
    if table.get("scheme", "").lower().endswith(".csv"):
        ws.inside(root, table["scheme"])
    if kind in RASTER_KINDS:
        band = form.get("band", "").strip()
        if band.isdigit() and int(band) > 1:
            table["band"] = int(band)
    else:
        _save_columns(kind, table, form)
    ws.write_runfile(root, raw)
    flash(f"{kind} saved to run.toml")


def _save_columns(kind: str, table: dict, form) -> None:
    from gis.validate import suggest_values

    required, optional = ws.canonical_columns(kind)
    columns = {c: form[f"col:{c}"] for c in required + optional if form.get(f"col:{c}")}
    old_columns = table.get("columns", {})
    table["columns"] = columns
    for (map_kind, canon), (where, _options) in ws.VALUE_MAPS.items():
        if map_kind != kind:
            continue
        shown = form.get(f"valcol:{canon}")
        if columns.get(canon) != old_columns.get(canon) and shown != columns.get(canon):
            # another column chosen: its values are mapped on the page that follows
            _drop_values(table, where, canon)
            continue
        if shown is None:
            continue
        keys = [form.get(f"valkey:{canon}:{i}") for i in range(int(form.get(f"valn:{canon}", 0)))]
        chosen = [form.get(f"val:{canon}:{i}", "") for i in range(len(keys))]
        suggestion = suggest_values(kind, canon, pd.Series(keys, dtype="string"))
        mapping: dict[str, Any] = {}
        for key, pick, sug in zip(keys, chosen, suggestion, strict=True):
            if key is None or not pick:
                continue
            # what the run recognises by itself is left out of the run file; zone levels are
            # only ever recognised by their canonical names
            known = key.strip().lower() if canon == "level" else ("" if pd.isna(sug) else sug)
            if pick != known:
                mapping[key] = (pick == "true") if canon == "removal" else pick
        _drop_values(table, where, canon)
        if mapping:
            if where == "categories":
                table["categories"] = mapping
            else:
                table.setdefault("values", {})[canon] = mapping


def _drop_values(table: dict, where: str, canon: str) -> None:
    if where == "categories":
        table.pop("categories", None)
    else:
        table.get("values", {}).pop(canon, None)
        if not table.get("values"):
            table.pop("values", None)


# --------------------------------------------------------------------------------------------
# validate and run


def _load_config(root: Path):
    """The run file as the CLI reads it, or the problems that stop it."""
    from gis._errors import Problem
    from gis.config import load_runfile

    raw = ws.read_runfile(root)
    outside = ws.outside_paths(root, raw)
    if outside:
        raise InputError([Problem("the run file names a file outside the project folder",
                                  file=str(root / ws.RUNFILE), value=v,
                                  hint="copy the file into the project folder and choose it "
                                       "again") for v in outside])
    if not (root / ws.RUNFILE).is_file():
        ws.write_runfile(root, raw)
    return load_runfile(root / ws.RUNFILE)


def validate_page():
    root = _root()
    from gis.validate import load_run

    try:
        cfg = _load_config(root)
        _targets, layers, problems = load_run(cfg)
        inputs = layers.inputs
    except InputError as exc:
        problems, inputs = list(exc.problems), []
    errors = [p for p in problems if p.severity == "error"]
    return render_template("validate.html", problems=problems, errors=errors, inputs=inputs,
                           root=root)


def start_run():
    root = _root()
    runner = _runner()
    if runner.running:
        return _busy()
    try:
        _load_config(root)
    except InputError as exc:
        errors = [p for p in exc.problems if p.severity == "error"]
        return render_template("validate.html", problems=exc.problems, errors=errors, inputs=[],
                               root=root), 400
    if not runner.start(root / ws.RUNFILE):
        return _busy()
    return redirect(url_for("progress_page"), code=303)


def _busy():
    st = _runner().status()
    message = (f"a run is in progress (step {st['done']} of {st['total']}: {st['step']}): "
               "wait until it finishes, then start again")
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=message, status=st), 409
    return render_template("message.html", title="409 a run is in progress", message=message,
                           link=url_for("progress_page")), 409


def progress_page():
    return render_template("progress.html", status=_runner().status())


def status():
    return jsonify(_runner().status())


# --------------------------------------------------------------------------------------------
# outputs, site lists, comparison, files


def _output_dir() -> Path:
    return _root() / ws.OUTPUT


def outputs_page():
    out = _output_dir()
    files = []
    if (out / "run.json").is_file():
        files = [p.relative_to(_root()).as_posix() for p in sorted(out.rglob("*"))
                 if p.is_file() and not ws.is_private(p.relative_to(out).as_posix())]
    context: dict[str, Any] = {"files": files, "has_run": bool(files)}
    if (out / "buildings_pv.gpkg").is_file():
        pv = _pv_table(out)
        context["streets"] = sorted(pv["street"].dropna().astype(str).unique()) \
            if "street" in pv else []
        context["categories"] = sorted(pv["category"].dropna().astype(str).unique()) \
            if "category" in pv else []
    if (out / "scorecard.json").is_file():
        context["scorecard"] = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    prev = out.with_name(ws.OUTPUT + ".previous")
    context["has_previous"] = (prev / "run.json").is_file()
    from gis.sites import RANK_BY, SUFFIXES

    context.update(rank_by=RANK_BY, suffixes=SUFFIXES)
    return render_template("outputs.html", **context)


_PV_CACHE: dict[tuple[str, float], Any] = {}


def _pv_table(out: Path):
    from gis.sites import sites_from_run

    path = out / "buildings_pv.gpkg"
    key = (str(path), path.stat().st_mtime)
    if key not in _PV_CACHE:
        _PV_CACHE.clear()
        _PV_CACHE[key] = sites_from_run(out)
    return _PV_CACHE[key]


def download_sites():
    """A ranked site list, as ``gis-planner sites`` writes it with the same filters."""
    from gis import sites

    out = _output_dir()
    if not (out / "buildings_pv.gpkg").is_file():
        abort(404, description="no run with buildings yet: run first")
    args = request.args
    suffix = "." + args.get("format", "csv").lstrip(".")
    if suffix not in sites.SUFFIXES:
        abort(400, description=f"format must be one of {', '.join(sites.SUFFIXES)}")
    try:
        min_kwp = float(args["min_kwp"]) if args.get("min_kwp") else None
        top = int(args["top"]) if args.get("top") else None
    except ValueError:
        abort(400, description="min_kwp must be a number [kWp] and top a whole number")
    try:
        ranked = sites.select_sites(
            _pv_table(out), street=[s for s in args.getlist("street") if s] or None,
            category=[c for c in args.getlist("category") if c] or None, min_kwp=min_kwp,
            new_only=args.get("new_only") == "on", without_pv=args.get("without_pv") == "on",
            top=top, rank_by=args.get("rank_by", "annual_kwh"))
    except InputError as exc:
        return render_template("message.html", title="400 bad filter",
                               message="; ".join(str(p) for p in exc.problems)), 400
    meta = {}
    if (out / "run.json").is_file():
        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    scratch = _root() / ws.SCRATCH
    scratch.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        data = sites.export(ranked, folder / f"sites{suffix}", meta=meta,
                            kind="sites").read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    import io as _io

    return send_file(_io.BytesIO(data), as_attachment=True, download_name=f"sites{suffix}",
                     mimetype=_MIME.get(suffix, "application/octet-stream"))


_MIME = {".csv": "text/csv; charset=utf-8",
         ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         ".geojson": "application/geo+json", ".gpkg": "application/geopackage+sqlite3"}


def compare_page():
    from gis import compare

    out = _output_dir()
    prev = out.with_name(ws.OUTPUT + ".previous")
    if not (prev / "run.json").is_file() or not (out / "run.json").is_file():
        return render_template("message.html", title="nothing to compare yet",
                               message="a comparison needs two runs: run again after changing "
                                       "a layer or a setting", link=url_for("outputs_page"))
    result = compare.compare_runs(prev, out)
    return compare.comparison_html(result)


def project_file(rel: str):
    path = ws.inside(_root(), rel)
    if ws.is_private(rel):
        raise ws.Forbidden(f"a private file of the workspace: {rel!r}")
    if not path.is_file():
        abort(404)
    # the run's pages open in the browser; any other file (an uploaded page, say) is only
    # downloaded, so that nothing but the workspace's own pages runs on its origin
    outputs = (ws.OUTPUT + "/", ws.OUTPUT + ".previous/")
    return send_file(path, as_attachment=not rel.replace("\\", "/").startswith(outputs))
