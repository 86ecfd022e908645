"""What QGIS sees in an output folder: each GeoPackage layer's default style, and project.qgz.

Run by Debian's Python with PyQGIS (``python3-qgis``), not the project's interpreter::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py FOLDER

prints JSON.  :func:`inspect` runs it from a test; :func:`qgis_python` says whether it can.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

DEBIAN_PYTHON = "/usr/bin/python3"


@functools.cache
def qgis_python() -> str | None:
    """Debian's python3 when it can import PyQGIS, else None."""
    if not Path(DEBIAN_PYTHON).exists():
        return None
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import qgis.core"], capture_output=True,
                           env=_env(), timeout=120)
    return DEBIAN_PYTHON if probe.returncode == 0 else None


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    return env


def inspect(folder: Path) -> dict:
    """Run this script on ``folder`` with PyQGIS and return what it found."""
    done = subprocess.run([qgis_python(), __file__, str(folder)], capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def _renderer(layer) -> dict:
    r = layer.renderer()
    info = {"valid": layer.isValid(), "renderer": r.type(), "features": layer.featureCount()}
    if r.type() in ("graduatedSymbol", "categorizedSymbol"):
        info["field"] = r.classAttribute()
    # keep the class lists alive while their symbols are read (they own them)
    if r.type() == "graduatedSymbol":
        classes = r.ranges()
        info["bounds"] = [[x.lowerValue(), x.upperValue()] for x in classes]
    elif r.type() == "categorizedSymbol":
        classes = r.categories()
        info["values"] = [str(c.value()) for c in classes]
    else:
        classes = [r]
    symbol = classes[0].symbol()
    sl = symbol.symbolLayer(0)
    info["symbol_layer"] = sl.layerType()
    if sl.layerType() == "SimpleFill":
        from qgis.PyQt.QtCore import Qt

        info["outline"] = "none" if sl.strokeStyle() == Qt.NoPen else sl.strokeColor().name()
        info["outline_width_mm"] = sl.strokeWidth()
    return info


def main(folder: Path) -> dict:
    import sqlite3

    from qgis.core import QgsApplication, QgsProject, QgsVectorLayer

    app = QgsApplication([], False)
    app.initQgis()
    out: dict = {"layers": {}, "project": {}}
    for gpkg in sorted(folder.glob("*.gpkg")):
        with sqlite3.connect(gpkg) as con:
            names = [r[0] for r in con.execute("SELECT table_name FROM gpkg_geometry_columns")]
        for name in names:
            layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
            out["layers"][f"{gpkg.name}:{name}"] = _renderer(layer)
    project = QgsProject.instance()
    out["project_read"] = project.read(str(folder / "project.qgz"))
    for layer in project.mapLayers().values():
        out["project"][layer.name()] = {**_renderer(layer), "source": layer.source()}
    root = project.layerTreeRoot()
    out["groups"] = {g.name(): [c.name() for c in g.children()] for g in root.children()}
    out["absolute_paths"] = project.readBoolEntry("Paths", "/Absolute", True)[0]
    app.exitQgis()
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), ensure_ascii=False))
