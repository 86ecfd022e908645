"""Target presets of the carbon-peak plan and the scorecard they are evaluated into.

Targets are data, not code: a preset shipped with the package (``dongli-2025``, ``dongli-2030``)
or a TOML file of the same shape that a planner copies and edits.  The analyses
(:mod:`gis.rooftop`, :mod:`gis.ecology`) turn them into scorecard entries; this module loads them
and assembles the scorecard.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from gis._errors import Problem, RunFileError, suggest

_REQUIRED = ("id", "measure", "where", "target", "unit")
_TARGET_KEYS = set(_REQUIRED) | {"measure_zh", "by", "note"}
_PARAM_KEYS = {"grid_co2_t_per_mwh", "coal_gce_per_kwh", "new_building_since"}
_UNITS = {"share", "m3", "ha", "count"}

ENTRY_KEYS = ("id", "measure", "where", "value", "target", "unit", "met", "gap", "basis")


def preset_names() -> list[str]:
    """Names of the built-in target presets.

    Examples
    --------
    >>> preset_names()
    ['dongli-2025', 'dongli-2030']
    """
    folder = resources.files("gis") / "data" / "targets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_targets(name_or_path: str | Path, *, base: Path | None = None) -> dict[str, Any]:
    """Load a target preset by name, or a targets TOML file by path.

    Parameters
    ----------
    name_or_path : str or Path
        A built-in preset name (see :func:`preset_names`) or a path to a TOML file.
    base : Path, optional
        Folder a relative path is resolved against (the run file's folder).

    Returns
    -------
    dict
        ``{"name", "title", "source", "targets": {id: {...}}, "params": {...}}``.

    Raises
    ------
    RunFileError
        When the file is missing, unreadable or has unknown or missing keys (all reported at once).

    Examples
    --------
    >>> t = load_targets("dongli-2025")
    >>> len(t["targets"]), t["params"]["grid_co2_t_per_mwh"], t["params"]["coal_gce_per_kwh"]
    (10, 0.5703, 290.0)
    >>> t["targets"]["forest-level1"]["target"], t["targets"]["forest-level1"]["unit"]
    (0.275, 'share')
    """
    text_name = str(name_or_path)
    if text_name in preset_names():
        ref = resources.files("gis") / "data" / "targets" / f"{text_name}.toml"
        source = f"preset {text_name}"
        raw_text = ref.read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise RunFileError(
                Problem(
                    "targets are neither a built-in preset nor an existing file",
                    hint=f"use one of {', '.join(preset_names())} or a path to a targets TOML file",
                    value=text_name,
                    column="project.targets",
                )
            )
        source = str(path)
        try:
            raw_text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise RunFileError(Problem("targets file is not UTF-8 text", file=source,
                                       hint="save the targets file as UTF-8")) from None
    try:
        raw = tomllib.loads(raw_text)
    except tomllib.TOMLDecodeError as exc:
        raise RunFileError(
            Problem(f"not valid TOML: {exc}", file=source, hint="fix the syntax of the targets file")
        ) from None
    return _parse_targets(raw, source)


def _parse_targets(raw: dict, source: str) -> dict[str, Any]:
    problems: list[Problem] = []
    for key in set(raw) - {"meta", "params", "target"}:
        problems.append(Problem("unknown key", file=source, column=key,
                                hint="allowed top-level tables: meta, params, target"))
    for key in ("meta", "params"):
        if not isinstance(raw.get(key, {}), dict):
            problems.append(Problem("must be a table", file=source, column=key, value=raw[key],
                                    hint=f"write [{key}]"))
    entries = raw.get("target", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append(Problem("targets must be a list of tables", file=source, column="target",
                                hint="write each target as a [[target]] table"))
        entries = []
    if problems:
        raise RunFileError(problems)
    params = dict(raw.get("params", {}))
    for key in set(params) - _PARAM_KEYS:
        problems.append(Problem("unknown parameter", file=source, column=f"params.{key}",
                                hint=suggest(key, _PARAM_KEYS)))
    for key in _PARAM_KEYS & set(params):
        if not isinstance(params[key], int | float) or isinstance(params[key], bool):
            problems.append(Problem("must be a number", file=source, column=f"params.{key}",
                                    value=params[key]))
    targets: dict[str, dict] = {}
    for i, entry in enumerate(entries):
        where = f"target[{i}]"
        for key in set(entry) - _TARGET_KEYS:
            problems.append(Problem("unknown key", file=source, column=f"{where}.{key}",
                                    hint=suggest(key, _TARGET_KEYS)))
        missing = [k for k in _REQUIRED if k not in entry]
        for key in missing:
            problems.append(Problem("missing required key", file=source, column=f"{where}.{key}"))
        if missing:
            continue
        texts = [k for k in ("id", "unit", "measure", "where") if not isinstance(entry[k], str)]
        for key in texts:
            problems.append(Problem("must be text", file=source, column=f"{where}.{key}",
                                    value=entry[key]))
        if texts:
            continue
        value = entry["target"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            problems.append(Problem("target must be a number", file=source,
                                    column=f"{where}.target", value=value))
        elif entry["unit"] == "share" and not 0 <= value <= 1:
            problems.append(Problem("a share target is a fraction between 0 and 1", file=source,
                                    column=f"{where}.target", value=value,
                                    hint="write 0.65 for 65 %"))
        if entry["unit"] not in _UNITS:
            problems.append(Problem("unknown unit", file=source, column=f"{where}.unit",
                                    value=entry["unit"], hint=f"use one of {sorted(_UNITS)}"))
        if entry["id"] in targets:
            problems.append(Problem("duplicate target id", file=source, column=f"{where}.id",
                                    value=entry["id"]))
        targets[entry["id"]] = {"measure_zh": "", "by": None, **entry}
    if problems:
        raise RunFileError(problems)
    meta = raw.get("meta", {})
    return {
        "name": meta.get("name", Path(source).stem),
        "title": meta.get("title", ""),
        "year": meta.get("year"),
        "source": source,
        "targets": targets,
        "params": {
            "grid_co2_t_per_mwh": 0.5703,
            "coal_gce_per_kwh": 290.0,
            "new_building_since": 2022,
            **params,
        },
    }


def entry(spec: dict, *, value: float, gap: float, gap_unit: str, basis: str,
          met: bool | None = None, **extra: Any) -> dict[str, Any]:
    """One scorecard entry from a target spec and its evaluated value.

    Parameters
    ----------
    spec : dict
        The target as loaded by :func:`load_targets`.
    value : float
        The measured value, in the target's unit (shares as fractions).
    gap : float
        How far from the target, ``>= 0``, in ``gap_unit``.
    gap_unit : str
        Unit of the gap (``"ha"``, ``"m3"``, ``"buildings"``, ``"m2"``, ``"share"``).
    basis : str
        Which definition and area basis produced the value.
    met : bool, optional
        Defaults to ``value >= target``.
    **extra
        Further keys (details, candidate lists) kept in the entry.

    Examples
    --------
    >>> spec = load_targets("dongli-2025")["targets"]["forest-level1"]
    >>> e = entry(spec, value=0.24, gap=338.0, gap_unit="ha", basis="geometric areas")
    >>> e["met"], e["gap"], e["unit"], e["by"]
    (False, 338.0, 'share', 2025)
    """
    target = float(spec["target"])
    value = float(value)
    return {
        "id": spec["id"],
        "measure": spec["measure"],
        "measure_zh": spec.get("measure_zh", ""),
        "where": spec["where"],
        "value": value,
        "target": target,
        "unit": spec["unit"],
        "met": bool(value >= target) if met is None else bool(met),
        "gap": max(0.0, float(gap)),
        "gap_unit": gap_unit,
        "basis": basis,
        "by": spec.get("by"),
        **extra,
    }


def scorecard(entries: list[dict], targets: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """Assemble the scorecard, in the order the targets file lists them.

    Targets the run could not evaluate (a layer missing) are kept with ``value`` None and a
    ``basis`` saying why, so that nothing drops out of a planner's view silently.

    Examples
    --------
    Targets without an entry are kept, unevaluated:

    >>> t = load_targets("dongli-2025")
    >>> e = entry(t["targets"]["forest-level1"], value=0.24, gap=338.0, gap_unit="ha",
    ...           basis="geometric areas")
    >>> card = scorecard([e], t, project="示例")
    >>> len(card["targets"]), card["targets"][2]["id"], card["targets"][2]["met"]
    (10, 'forest-level1', False)
    >>> card["targets"][0]["value"], card["meta"]["preset"]
    (None, 'dongli-2025')
    """
    by_id = {e["id"]: e for e in entries}
    ordered = []
    for tid, spec in targets["targets"].items():
        if tid in by_id:
            ordered.append(by_id[tid])
        else:
            ordered.append({
                "id": tid, "measure": spec["measure"], "measure_zh": spec.get("measure_zh", ""),
                "where": spec["where"], "value": None, "target": float(spec["target"]),
                "unit": spec["unit"], "met": None, "gap": None, "gap_unit": None,
                "basis": "not evaluated: the layers this target needs were not given",
                "by": spec.get("by"),
            })
    ordered.extend(e for e in entries if e["id"] not in targets["targets"])
    return {"targets": ordered, "meta": {"preset": targets["name"], "title": targets["title"],
                                          "params": targets["params"], **meta}}
