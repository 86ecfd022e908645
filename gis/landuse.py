"""Land-use classification: code schemes → blue, green, blue-green, forest and candidate flags.

A land-use code means nothing without its scheme: ``0601`` is industrial land in the third land
survey (三调, GB/T 21010-2017) and a rural road in the 2023 land-and-sea classification (用地用海).
Every function here therefore takes the scheme next to the codes.

Schemes
-------
``gbt21010``
    Third national land survey (第三次全国国土调查, GB/T 21010-2017 with the survey's suffix codes
    such as ``0307K``, ``1104A``, ``05H1``, ``08H2A``; rows ``sandiao`` of the code table).
``ydyh2023``
    国土空间调查、规划、用途管制用地用海分类指南 (2023).
``worldcover``
    ESA WorldCover 10 m land-cover classes (rasters).
``osm``
    OpenStreetMap ``key=value`` tags (polygons may overlap: see :func:`flatten_overlaps`).
path to a CSV
    A planner's own table with the columns of the built-in one (``scheme`` optional).

Flag values in the code table
-----------------------------
``0``/``1`` no/yes; ``cfg0``/``cfg1`` switchable, default off/on (``EcologyOptions.switches``);
``crop`` marks cropland (green under the broad blue-green definition only); ``proxy1`` counts as
forest but only as a proxy (land cover, not the survey's canopy-closure rule).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis._errors import InputError, Problem, suggest
from gis.config import is_number as _is_number

SCHEMES = ("gbt21010", "ydyh2023", "worldcover", "osm")
_TABLE_SCHEME = {"sandiao": "gbt21010"}
_FLAG_COLUMNS = ("blue", "green", "bg_broad", "bg_narrow", "forest", "candidate_afforest")
_TABLE_COLUMNS = ("code", "name_zh", "name_en", *_FLAG_COLUMNS)

#: Other forest land (sparse, not yet closed, nurseries): counted apart as "in the pipeline"
#: until its canopy closes (DESIGN §6.4).  ``0307K`` (planted on farmland, may be restored to
#: cropland under the farmland rules) is deliberately not in the pipeline.
PIPELINE_CODES = {"gbt21010": frozenset({"0307"}), "ydyh2023": frozenset({"0304"})}

#: Construction land by scheme (for map colouring and the removal rule).  GB/T 21010 first-level
#: classes 05–10 (commerce, industry/mining/storage, housing, public services, special use,
#: transport) plus 1109 hydraulic structures; 用地用海 classes 06–16 (06 agricultural facility
#: construction land, 07 residential … 16 reserved land).
_CONSTRUCTION_PREFIX = {
    "gbt21010": ("05", "06", "07", "08", "09", "10", "1109"),
    "ydyh2023": ("06", "07", "08", "09", "10", "11", "12", "13", "15", "16", "1403"),
    "worldcover": ("50",),
    "osm": (),
}
# The survey's own "construction" reading of 0603 salt pans and 1202 facility agriculture is
# debatable; they stay "other" for colouring and carry their own flags from the table.
_NOT_CONSTRUCTION = frozenset({"0603"})

#: OSM tags of built-up land that the reference table leaves out (it lists only green and blue
#: tags).  Known, all flags off, so that a town's residential polygons are not reported unknown.
_OSM_BUILT = (
    ("landuse=residential", "居住用地", "residential"),
    ("landuse=commercial", "商业用地", "commercial"),
    ("landuse=retail", "零售商业", "retail"),
    ("landuse=industrial", "工业用地", "industrial"),
    ("landuse=construction", "在建用地", "construction site"),
    ("landuse=railway", "铁路用地", "railway"),
    ("landuse=military", "军事用地", "military"),
    ("landuse=garages", "车库用地", "garages"),
    ("landuse=brownfield", "待开发用地", "brownfield"),
    ("landuse=greenfield", "规划待建绿地", "greenfield (planned construction)"),
    ("landuse=farmyard", "农家院落", "farmyard"),
    ("landuse=greenhouse_horticulture", "温室大棚", "greenhouse horticulture"),
)
#: OSM keys looked at, in this order, when a polygon carries several tags.
OSM_KEYS = ("natural", "water", "waterway", "wetland", "landuse", "leisure")

#: Order in which overlapping OSM polygons win (first wins): water over wetland over forest …
OSM_PRIORITY = ("blue", "forest", "green", "cropland", "construction", "other")


# ---------------------------------------------------------------------------------------------
# Code table
# ---------------------------------------------------------------------------------------------
def load_code_table(scheme: str | Path | None = None) -> pd.DataFrame:
    """The land-use code reference table, for one scheme or all of them.

    Parameters
    ----------
    scheme : str or Path, optional
        ``"gbt21010"``, ``"ydyh2023"``, ``"worldcover"``, ``"osm"``, a path to a CSV with the same
        columns (``code, name_zh, name_en, blue, green, bg_broad, bg_narrow, forest,
        candidate_afforest``; ``scheme`` and ``note`` optional), or None for the whole built-in
        table.

    Returns
    -------
    pandas.DataFrame
        One row per code: ``scheme, code, name_zh, name_en`` and the flag columns as text
        (``"0"``, ``"1"``, ``"crop"``, ``"cfg0"``, ``"cfg1"``, ``"proxy1"``), plus ``note``.

    Raises
    ------
    InputError
        Unknown scheme name, missing CSV, missing columns, bad flag values or duplicate codes.

    Examples
    --------
    >>> load_code_table("worldcover")[["code", "name_en", "forest"]].head(3)
      code     name_en  forest
    0   10  Tree cover  proxy1
    1   20   Shrubland       0
    2   30   Grassland       0
    >>> sorted(load_code_table()["scheme"].unique())
    ['gbt21010', 'osm', 'worldcover', 'ydyh2023']
    """
    if scheme is None:
        return _builtin_table().copy()
    text = str(scheme)
    if text in SCHEMES:
        table = _builtin_table()
        return table[table["scheme"] == text].reset_index(drop=True)
    path = Path(text)
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise InputError(Problem(
            "unknown land-use scheme", column="layers.landuse.scheme", value=text,
            hint=f"use one of {', '.join(SCHEMES)} or the path of a mapping CSV with the "
                 "columns of the built-in table"))
    return _user_table(path)


@lru_cache(maxsize=1)
def _builtin_table() -> pd.DataFrame:
    ref = resources.files("gis") / "data" / "landuse_codes.csv"
    with resources.as_file(ref) as path:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    table["scheme"] = table["scheme"].replace(_TABLE_SCHEME)
    extra = pd.DataFrame(
        [("osm", code, zh, en, "0", "0", "0", "0", "0", "0", "built-up (not in reference table)")
         for code, zh, en in _OSM_BUILT],
        columns=["scheme", *_TABLE_COLUMNS, "note"])
    return pd.concat([table, extra], ignore_index=True)


def _user_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(Problem(f"cannot read the mapping CSV: {exc}", file=str(path),
                                 hint="save it as UTF-8 CSV")) from None
    problems = [Problem("missing column in the mapping CSV", file=str(path), column=c,
                        hint=f"the table needs {', '.join(_TABLE_COLUMNS)}")
                for c in _TABLE_COLUMNS if c not in table.columns]
    if problems:
        raise InputError(problems)
    table["code"] = table["code"].str.strip()
    for col in _FLAG_COLUMNS:
        table[col] = table[col].str.strip().str.lower()
        bad = sorted(set(table[col]) - {"0", "1", "crop", "cfg0", "cfg1", "proxy1"})
        problems += [Problem("unknown flag value", file=str(path), column=col, value=v,
                             hint="use 0, 1, crop, cfg0, cfg1 or proxy1") for v in bad]
    for code in sorted(set(table.loc[table["code"].duplicated(), "code"])):
        problems.append(Problem("code listed twice", file=str(path), column="code", value=code,
                                hint="keep one row per code"))
    if problems:
        raise InputError(problems)
    table["scheme"] = str(path)
    if "note" not in table.columns:
        table["note"] = ""
    return table


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------
#: Default growing stock per forest class [m³/ha] where no stands layer is given.  Arbor forest:
#: national average of planted arbor forest, 59.30 m³/ha (第九次全国森林资源清查 2014–2018,
#: 《中国森林资源报告》, 国家林业和草原局 2019) — the barrier's forests are young plantations.
#: Bamboo and shrubs carry no timber volume in the inventory (bamboo is counted by culms).
DEFAULT_STOCK_M3_HA = {"arbor": 59.30, "bamboo": 0.0, "shrub": 0.0}

#: Carbon factors by species group: BEF (biomass expansion factor, above-ground biomass ÷ stem
#: biomass) [-], R (root-to-shoot ratio) [-], wood density (basic, oven-dry t per fresh m³)
#: [t/m³] and carbon fraction [t C / t dry matter].  BEF, R and wood density: tree-species-group
#: table of 《省级温室气体清单编制指南（试行）》 (国家发展和改革委员会, 2011), land-use change and
#: forestry chapter, which derives them from the national forest inventory; carbon fraction 0.5
#: as used in that guideline (IPCC 2006 Guidelines Vol. 4 Ch. 4 Table 4.3 gives 0.47–0.51).
#: The "broadleaf" group (mixed broadleaf) is the default for unknown species.
CARBON_FACTORS: dict[str, dict[str, float]] = {
    "poplar": {"bef": 1.446, "root_shoot": 0.227, "wood_density_t_m3": 0.378,
               "carbon_fraction": 0.5},
    "willow": {"bef": 1.821, "root_shoot": 0.288, "wood_density_t_m3": 0.443,
               "carbon_fraction": 0.5},
    "hard_broadleaf": {"bef": 1.674, "root_shoot": 0.261, "wood_density_t_m3": 0.598,
                       "carbon_fraction": 0.5},
    "soft_broadleaf": {"bef": 1.586, "root_shoot": 0.289, "wood_density_t_m3": 0.443,
                       "carbon_fraction": 0.5},
    "broadleaf": {"bef": 1.514, "root_shoot": 0.262, "wood_density_t_m3": 0.482,
                  "carbon_fraction": 0.5},
    "pine": {"bef": 1.589, "root_shoot": 0.251, "wood_density_t_m3": 0.360,
             "carbon_fraction": 0.5},
    "cypress": {"bef": 1.732, "root_shoot": 0.220, "wood_density_t_m3": 0.478,
                "carbon_fraction": 0.5},
}
_CARBON_KEYS = {"bef", "root_shoot", "wood_density_t_m3", "carbon_fraction"}

#: Species names (Chinese or English, matched as substrings, case-insensitive) → group.  The
#: first matching group wins, so "毛白杨" is poplar and "垂柳" willow.
SPECIES_GROUPS: dict[str, tuple[str, ...]] = {
    "poplar": ("杨", "poplar", "populus"),
    "willow": ("柳", "willow", "salix"),
    "hard_broadleaf": ("刺槐", "洋槐", "国槐", "槐", "白蜡", "榆", "栎", "橡", "核桃", "枣",
                       "locust", "robinia", "sophora", "styphnolobium", "ash", "fraxinus",
                       "elm", "ulmus", "oak", "quercus"),
    "soft_broadleaf": ("椿", "泡桐", "桑", "柿", "悬铃木", "法桐", "ailanthus", "paulownia",
                       "morus", "platanus"),
    "pine": ("松", "pine", "pinus"),
    "cypress": ("柏", "cypress", "juniper", "platycladus", "sabina"),
}

_OPTION_KEYS = {"bluegreen", "switches", "include_cropland_candidates",
                "include_removal_candidates", "default_stock_m3_ha", "carbon_factors",
                "default_species_group"}


@dataclass(frozen=True)
class EcologyOptions:
    """Definitions and factors of the ecology accounting (the run file's ``[ecology]`` table).

    Parameters
    ----------
    bluegreen : {"broad", "narrow"}
        Blue-green space definition.  ``broad`` (default): all non-construction land — forest,
        garden, grass, water, wetland and cropland.  ``narrow``: without cropland and gardens.
    switches : dict
        ``{code: bool}`` turning the table's switchable values (``cfg0``/``cfg1``) of a code on or
        off, for every flag of that code; ``{"code:flag": bool}`` (flag one of ``blue, green,
        bg_broad, bg_narrow, forest, candidate_afforest``) switches one flag only.
    include_cropland_candidates : bool
        Offer cropland as afforestation candidates.  Off by default: the national rule against
        afforesting farmland (国务院办公厅《关于坚决制止耕地"非农化"行为的通知》
        国办发明电〔2020〕24号).
    include_removal_candidates : bool
        Offer construction land slated for removal (``removal`` true, codes marked ``cfg1`` as
        candidates) — on by default.
    default_stock_m3_ha : dict
        Growing stock per forest class [m³/ha] when no stands layer is given
        (keys ``arbor``, ``bamboo``, ``shrub``); see :data:`DEFAULT_STOCK_M3_HA`.
    carbon_factors : dict
        Per species group ``{"bef", "root_shoot", "wood_density_t_m3", "carbon_fraction"}``;
        given groups/keys override :data:`CARBON_FACTORS`.
    default_species_group : str
        Group for stands of unknown species and for per-class default stock.
    """

    bluegreen: str = "broad"
    switches: dict[str, bool] = field(default_factory=dict)
    include_cropland_candidates: bool = False
    include_removal_candidates: bool = True
    default_stock_m3_ha: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_STOCK_M3_HA))
    carbon_factors: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in CARBON_FACTORS.items()})
    default_species_group: str = "broadleaf"

    @property
    def bluegreen_label(self) -> str:
        """Short text naming the blue-green definition, for outputs."""
        if self.bluegreen == "narrow":
            return "narrow blue-green (without cropland and gardens)"
        return "broad blue-green (all non-construction land incl. cropland)"


def ecology_options(**table: Any) -> EcologyOptions:
    """Validated :class:`EcologyOptions` from the run file's ``[ecology]`` table.

    Parameters
    ----------
    **table
        Keys of :class:`EcologyOptions`; partial ``default_stock_m3_ha`` and ``carbon_factors``
        tables are merged over the defaults.

    Returns
    -------
    EcologyOptions

    Raises
    ------
    InputError
        Every unknown key (named ``ecology.<key>``) and every bad value, all at once.

    Examples
    --------
    >>> ecology_options(bluegreen="narrow").bluegreen_label
    'narrow blue-green (without cropland and gardens)'
    >>> ecology_options(default_stock_m3_ha={"arbor": 45.0}).default_stock_m3_ha
    {'arbor': 45.0, 'bamboo': 0.0, 'shrub': 0.0}
    >>> ecology_options(bluegren="narrow")
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: column 'ecology.bluegren': unknown key -> did you mean 'bluegreen'? ...
    """
    problems: list[Problem] = []
    for key in sorted(set(table) - _OPTION_KEYS):
        problems.append(Problem("unknown key", column=f"ecology.{key}",
                                hint=suggest(key, _OPTION_KEYS)))
    kw: dict[str, Any] = {}
    if "bluegreen" in table:
        if table["bluegreen"] not in ("broad", "narrow"):
            problems.append(Problem("blue-green definition must be broad or narrow",
                                    column="ecology.bluegreen", value=table["bluegreen"]))
        kw["bluegreen"] = table["bluegreen"]
    for key in ("include_cropland_candidates", "include_removal_candidates"):
        if key in table:
            if not isinstance(table[key], bool):
                problems.append(Problem("must be true or false", column=f"ecology.{key}",
                                        value=table[key]))
            kw[key] = table[key]
    if "switches" in table:
        kw["switches"] = _check_switches(table["switches"], problems)
    if "default_stock_m3_ha" in table:
        stock = dict(DEFAULT_STOCK_M3_HA)
        given = table["default_stock_m3_ha"]
        if not isinstance(given, dict):
            given = {}
            problems.append(Problem("must be a table of forest class → m³/ha",
                                    column="ecology.default_stock_m3_ha"))
        for k, v in given.items():
            if k not in DEFAULT_STOCK_M3_HA:
                problems.append(Problem("unknown forest class",
                                        column=f"ecology.default_stock_m3_ha.{k}",
                                        hint=suggest(k, DEFAULT_STOCK_M3_HA)))
            elif not _is_number(v) or v < 0:
                problems.append(Problem("must be a number ≥ 0 [m³/ha]",
                                        column=f"ecology.default_stock_m3_ha.{k}", value=v))
            else:
                stock[k] = float(v)
        kw["default_stock_m3_ha"] = stock
    if "carbon_factors" in table:
        kw["carbon_factors"] = _check_carbon(table["carbon_factors"], problems)
    groups = set(CARBON_FACTORS) | set(kw.get("carbon_factors", {}))
    if "default_species_group" in table:
        if table["default_species_group"] not in groups:
            problems.append(Problem("unknown species group",
                                    column="ecology.default_species_group",
                                    value=table["default_species_group"],
                                    hint=f"use one of {', '.join(sorted(groups))}"))
        kw["default_species_group"] = table["default_species_group"]
    if problems:
        raise InputError(problems)
    return EcologyOptions(**kw)


def _check_switches(given: Any, problems: list[Problem]) -> dict[str, bool]:
    if not isinstance(given, dict):
        problems.append(Problem("must be a table of code → true/false",
                                column="ecology.switches"))
        return {}
    table = _builtin_table()
    switchable = table[list(_FLAG_COLUMNS)].isin(["cfg0", "cfg1"])
    codes = set(table.loc[switchable.any(axis=1), "code"])
    out: dict[str, bool] = {}
    for key, value in given.items():
        code, _, flag = str(key).partition(":")
        where = f"ecology.switches.{key}"
        if not isinstance(value, bool):
            problems.append(Problem("must be true or false", column=where, value=value))
        if flag and flag not in _FLAG_COLUMNS:
            problems.append(Problem("unknown flag", column=where, value=flag,
                                    hint=f"use one of {', '.join(_FLAG_COLUMNS)}"))
        elif code not in codes:
            problems.append(Problem("code has no switchable value in the code table",
                                    column=where, value=code,
                                    hint="switchable codes: " + ", ".join(sorted(codes))))
        out[str(key)] = bool(value)
    return out


def _check_carbon(given: Any, problems: list[Problem]) -> dict[str, dict[str, float]]:
    out = {k: dict(v) for k, v in CARBON_FACTORS.items()}
    if not isinstance(given, dict):
        problems.append(Problem("must be a table of species group → factors",
                                column="ecology.carbon_factors"))
        return out
    for group, factors in given.items():
        where = f"ecology.carbon_factors.{group}"
        if not isinstance(factors, dict):
            problems.append(Problem("must be a table of factors", column=where))
            continue
        base = out.get(group, {})
        for k, v in factors.items():
            if k not in _CARBON_KEYS:
                problems.append(Problem("unknown factor", column=f"{where}.{k}",
                                        hint=suggest(k, _CARBON_KEYS)))
            elif not _is_number(v) or v < 0:
                problems.append(Problem("must be a number ≥ 0", column=f"{where}.{k}", value=v))
            else:
                base[k] = float(v)
        missing = _CARBON_KEYS - set(base)
        if missing:
            problems.append(Problem("new species group lacks factors", column=where,
                                    value=sorted(missing)))
        out[group] = base
    return out


# ---------------------------------------------------------------------------------------------
# Code normalisation
# ---------------------------------------------------------------------------------------------
_FLOAT_INT = re.compile(r"^(\d+)\.0*$")


def _scheme_name(scheme: str | Path) -> str:
    text = str(scheme)
    return text if text in SCHEMES else "custom"


def _to_text(codes: pd.Series, scheme: str) -> pd.Series:
    """Codes as stripped text; numbers read from DBF (301, 301.0) lose their decimals."""
    values = codes.astype(object)
    numeric = values.map(lambda v: isinstance(v, int | float | np.integer | np.floating)
                         and not isinstance(v, bool))
    text = values.where(~numeric, None).astype("string").str.strip()
    if numeric.any():
        nums = pd.to_numeric(values[numeric], errors="coerce")
        whole = nums.notna() & (nums == np.floor(nums.fillna(0)))
        as_int = nums[whole].astype("int64").astype("string")
        text.loc[as_int.index] = as_int
        text.loc[nums[~whole].index] = nums[~whole].astype("string")
    text = text.str.replace(_FLOAT_INT, r"\1", regex=True)
    if scheme == "osm":
        return text.str.replace(" ", "", regex=False).str.lower()
    return text.str.upper()


def normalise_codes(codes: pd.Series, scheme: str | Path) -> pd.DataFrame:
    """Match raw codes to the scheme's table, repairing what the survey files do to them.

    Steps: strip spaces; upper-case suffix letters (``" 0307k "`` → ``"0307K"``); numbers read
    from DBF files lose their decimals and leading zeros (``301.0`` → ``"0301"``, ``9`` →
    ``"09"``); a code not in the table falls back to its longest known prefix (``"0301X"`` →
    ``"0301"``, 用地用海 ``"060101"`` → ``"0601"``) — reported as a fallback.

    Parameters
    ----------
    codes : pandas.Series
        Raw codes (text or numbers).
    scheme : str or Path
        See :func:`load_code_table`.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``codes``: ``code`` (cleaned text), ``class_code`` (the table row used, NA when
        unknown), ``fallback`` (bool: matched by a shorter prefix).

    Examples
    --------
    >>> normalise_codes(pd.Series([" 0307k ", 301.0, "0301X"]), "gbt21010")
        code class_code  fallback
    0  0307K      0307K     False
    1   0301       0301     False
    2  0301X       0301      True
    """
    name = _scheme_name(scheme)
    table_codes = set(load_code_table(scheme)["code"])
    # A layer holds few distinct codes (tens): clean and resolve each distinct value once, then
    # broadcast by position — no per-parcel Python work.
    pos, uniq = pd.factorize(codes.astype(object), use_na_sentinel=True)
    text = _to_text(pd.Series(uniq, dtype=object), name)
    resolved = pd.DataFrame([_resolve(c, table_codes, name) if pd.notna(c) else (None, None, False)
                             for c in text], columns=["code", "class_code", "fallback"])
    resolved.loc[len(resolved)] = [None, None, False]  # row for missing codes (position -1)
    hit = resolved.iloc[np.where(pos < 0, len(resolved) - 1, pos)]
    return pd.DataFrame({"code": hit["code"].astype("string").to_numpy(),
                         "class_code": hit["class_code"].astype("string").to_numpy(),
                         "fallback": hit["fallback"].astype(bool).to_numpy()},
                        index=codes.index)


def _resolve(code: str, known: set[str], scheme: str) -> tuple[str, str | None, bool]:
    """(cleaned code, table code or None, matched by a shorter prefix)."""
    if code in known:
        return code, code, False
    if scheme in ("worldcover", "osm") or not code:
        return code, None, False
    # DBF numbers lose the leading zero of the two-digit first-level class (0301 → 301).
    if code.isdigit() and len(code) % 2 == 1:
        code = "0" + code
        if code in known:
            return code, code, False
    for n in range(len(code) - 1, 1, -1):
        if code[:n] in known:
            return code, code[:n], True
    return code, None, False


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------
def _flag(table: pd.DataFrame, col: str, options: EcologyOptions) -> pd.Series:
    raw = table[col]
    on = raw.isin(["1", "cfg1", "proxy1", "crop"])
    switchable = raw.isin(["cfg0", "cfg1"])
    for key, value in options.switches.items():
        code, _, flag = key.partition(":")
        if flag and flag != col:
            continue
        on = on.where(~(switchable & (table["code"] == code)), value)
    return on.astype(bool)


def _flags_table(scheme: str | Path, options: EcologyOptions) -> pd.DataFrame:
    """The flags of every code of a scheme under ``options`` (built once per built-in scheme
    and definition: a run classifies its parcels several times; never modify the result)."""
    if _scheme_name(scheme) == "custom":  # a mapping file may change between runs
        return _build_flags_table(scheme, options)
    return _cached_flags_table(str(scheme), options.bluegreen,
                               tuple(options.switches.items()))


@lru_cache(maxsize=16)
def _cached_flags_table(scheme: str, bluegreen: str, switches: tuple) -> pd.DataFrame:
    return _build_flags_table(scheme, EcologyOptions(bluegreen=bluegreen, switches=dict(switches)))


def _build_flags_table(scheme: str | Path, options: EcologyOptions) -> pd.DataFrame:
    table = load_code_table(scheme).drop_duplicates("code").set_index("code", drop=False)
    name = _scheme_name(scheme)
    out = pd.DataFrame(index=table.index)
    out["cropland"] = table["green"].eq("crop")
    blue = _flag(table, "blue", options)
    green = _flag(table, "green", options)
    broad = _flag(table, "bg_broad", options)
    narrow = _flag(table, "bg_narrow", options)
    out["blue"] = blue
    # "crop" rows are green only where cropland counts as blue-green (the broad definition).
    out["green"] = green & ~(out["cropland"] & (options.bluegreen == "narrow"))
    out["bluegreen_broad"] = broad
    out["bluegreen_narrow"] = narrow
    out["bluegreen"] = narrow if options.bluegreen == "narrow" else broad
    out["forest"] = _flag(table, "forest", options)
    out["forest_proxy"] = table["forest"].eq("proxy1")
    pipeline = PIPELINE_CODES.get(name, frozenset())
    if name == "custom" and "pipeline" in table.columns:
        out["pipeline"] = table["pipeline"].str.strip().eq("1")
    else:
        out["pipeline"] = table["code"].isin(pipeline)
    cand = table["candidate_afforest"]
    out["candidate_base"] = cand.eq("1")
    # cfg1 candidates are construction land that qualifies only where slated for removal.
    out["removable"] = cand.isin(["cfg0", "cfg1"]) & _flag(table, "candidate_afforest", options)
    prefixes = _CONSTRUCTION_PREFIX.get(name, ())
    construction = table["code"].str.startswith(prefixes) if prefixes else False
    if name == "custom" and "construction" in table.columns:
        construction = table["construction"].str.strip().eq("1")
    out["construction"] = (pd.Series(construction, index=table.index).astype(bool)
                           & ~table["code"].isin(_NOT_CONSTRUCTION))
    out["name_zh"] = table["name_zh"].astype("string")
    out["name_en"] = table["name_en"].astype("string")
    return out


def classify(codes: pd.Series, scheme: str | Path, *, options: EcologyOptions | None = None,
             removal: pd.Series | None = None) -> pd.DataFrame:
    """Flags of each land-use code: blue, green, blue-green, forest, pipeline, candidate.

    Parameters
    ----------
    codes : pandas.Series
        Land-use codes (text or numbers from a DBF), one per parcel.
    scheme : str or Path
        ``gbt21010``, ``ydyh2023``, ``worldcover``, ``osm`` or a mapping CSV path.
    options : EcologyOptions, optional
        Definitions and switches (defaults: broad blue-green, no cropland candidates).
    removal : pandas.Series of bool, optional
        Aligned to ``codes``: construction land slated for removal.  Only such parcels of the
        codes marked ``cfg1`` in ``candidate_afforest`` become candidates.

    Returns
    -------
    pandas.DataFrame
        Index aligned to ``codes``; columns ``code`` (cleaned), ``class_code`` (table row used),
        ``group`` (``blue | forest | green | cropland | construction | other`` for map colours),
        bool ``blue, green, bluegreen`` (by ``options.bluegreen``), ``bluegreen_broad,
        bluegreen_narrow, forest, forest_proxy, pipeline, cropland, construction, candidate,
        removable, known``, and ``name_zh, name_en``.  Unknown codes are ``known`` False with
        every flag False — list them with :func:`unknown_codes`, never drop them.

    Warns
    -----
    UserWarning
        When codes with unknown suffixes fall back to their base code.

    Examples
    --------
    Arbor forest counts as forest; other forest land (0307) only "in the pipeline"; cropland is
    blue-green under the broad definition only:

    >>> flags = classify(pd.Series(["0301", "0307", "0101", "0601"]), "gbt21010")
    >>> flags[["code", "forest", "pipeline", "bluegreen", "cropland", "group"]]
       code  forest  pipeline  bluegreen  cropland         group
    0  0301    True     False       True     False        forest
    1  0307   False      True       True     False         green
    2  0101   False     False       True      True      cropland
    3  0601   False     False      False     False  construction
    >>> narrow = ecology_options(bluegreen="narrow")
    >>> bool(classify(pd.Series(["0101"]), "gbt21010", options=narrow).loc[0, "bluegreen"])
    False

    Codes collide across schemes: 0601 is industrial land in the survey, a rural road in 用地用海.

    >>> classify(pd.Series(["0601"]), "ydyh2023").loc[0, "name_en"]
    'rural road (060101 村道用地/060102 田间道)'
    """
    options = options or EcologyOptions()
    norm = normalise_codes(codes, scheme)
    fallback = norm.loc[norm["fallback"], ["code", "class_code"]].drop_duplicates()
    if len(fallback):
        pairs = ", ".join(f"{a}→{b}" for a, b in fallback.itertuples(index=False))
        warnings.warn(f"land-use codes not in the {scheme} table counted as their base "
                      f"class: {pairs}", UserWarning, stacklevel=2)
    flags = _flags_table(scheme, options)
    joined = flags.reindex(norm["class_code"].fillna("\x00").to_numpy())
    joined.index = codes.index
    known = norm["class_code"].notna()
    bool_cols = ["blue", "green", "bluegreen", "bluegreen_broad", "bluegreen_narrow", "forest",
                 "forest_proxy", "pipeline", "cropland", "construction", "candidate_base",
                 "removable"]
    out = pd.DataFrame(index=codes.index)
    out["code"] = norm["code"]
    out["class_code"] = norm["class_code"]
    for col in bool_cols:
        out[col] = joined[col].fillna(False).astype(bool)
    if removal is None:
        slated = pd.Series(False, index=codes.index)
    else:
        slated = removal.reindex(codes.index).fillna(False).astype(bool)
    out["removal"] = slated
    removal_ok = out["removable"] & slated & options.include_removal_candidates
    crop_ok = out["cropland"] & options.include_cropland_candidates
    out["candidate"] = (out.pop("candidate_base") | removal_ok | crop_ok) & ~out["forest"]
    group = np.select(
        [out["blue"], out["forest"], out["cropland"], out["green"], out["construction"]],
        ["blue", "forest", "cropland", "green", "construction"], default="other")
    out["group"] = pd.Series(group, index=codes.index, dtype="string")
    out["known"] = known.astype(bool)
    out["name_zh"] = joined["name_zh"].astype("string")
    out["name_en"] = joined["name_en"].astype("string")
    return out


def classify_layer(landuse: gpd.GeoDataFrame, scheme: str | Path, *,
                   options: EcologyOptions | None = None) -> gpd.GeoDataFrame:
    """A copy of the land-use layer with the columns of :func:`classify` added.

    OSM layers without a ``code`` column are flattened and their tags picked first
    (:func:`classify_osm`).  The raw ``code`` column is kept as ``code`` (cleaned).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parcels = gpd.GeoDataFrame({"id": ["a", "b"], "code": ["0301", "0404"]},
    ...                            geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    ...                            crs="EPSG:4548")
    >>> classify_layer(parcels, "gbt21010")[["id", "code", "forest", "candidate", "name_en"]]
      id  code  forest  candidate        name_en
    0  a  0301    True      False   arbor forest (canopy>=0.2)
    1  b  0404   False       True  other grassland
    """
    layer = landuse.copy()
    if str(scheme) == "osm" and "code" not in layer.columns:
        layer["code"] = classify_osm(layer)
    removal = layer["removal"] if "removal" in layer.columns else None
    flags = classify(layer["code"], scheme, options=options, removal=removal)
    layer = layer.drop(columns=[c for c in flags.columns if c in layer.columns])
    return gpd.GeoDataFrame(pd.concat([layer, flags], axis=1), geometry=landuse.geometry.name,
                            crs=landuse.crs)


# ---------------------------------------------------------------------------------------------
# OSM
# ---------------------------------------------------------------------------------------------
def _tag_columns(gdf: pd.DataFrame) -> pd.DataFrame:
    if "tags" in gdf.columns:
        tags = gdf["tags"].map(_parse_tags)
        cols = {k: tags.map(lambda d, k=k: d.get(k)) for k in OSM_KEYS}
        return pd.DataFrame(cols, index=gdf.index)
    return pd.DataFrame({k: gdf[k] if k in gdf.columns else None for k in OSM_KEYS},
                        index=gdf.index)


def _parse_tags(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        return {}
    # "key"=>"value" (osm2pgsql hstore) or key=value;key=value
    pairs = re.findall(r'"?([\w:]+)"?\s*=>?\s*"?([^",;]*)"?', value)
    return {k: v.strip() for k, v in pairs}


def classify_osm(gdf: pd.DataFrame) -> pd.Series:
    """The ``key=value`` code of each OSM polygon, picked from its tags.

    Looks at the keys ``natural, water, waterway, wetland, landuse, leisure`` (columns, or a
    ``tags`` column holding a dict or ``"k"=>"v"`` text) and takes, per polygon, the first
    combination that is in the OSM code table, in the order of :data:`OSM_KEYS` (so
    ``natural=water`` beats ``leisure=park`` on a park's pond).  ``water=*`` and ``wetland=*``
    detail tags resolve to ``natural=water`` / ``natural=wetland``.

    Returns
    -------
    pandas.Series of str
        Aligned to ``gdf``; ``""`` where nothing matched (reported by :func:`unknown_codes`).

    Examples
    --------
    >>> tags = pd.DataFrame({"natural": ["water", None, None], "leisure": ["park", "park", None],
    ...                      "landuse": [None, None, "farmland"]})
    >>> classify_osm(tags).tolist()
    ['natural=water', 'leisure=park', 'landuse=farmland']
    >>> classify_osm(pd.DataFrame({"tags": ['"landuse"=>"forest"', "natural=wood;name=x"]})).tolist()
    ['landuse=forest', 'natural=wood']
    """
    tags = _tag_columns(gdf)
    known = set(load_code_table("osm")["code"])
    out = pd.Series("", index=gdf.index, dtype="string")
    for key in reversed(OSM_KEYS):  # earlier keys overwrite later ones: they win
        vals = tags[key].astype("string").str.strip().str.lower()
        if key in ("water", "wetland"):
            cand = pd.Series(f"natural={key}", index=gdf.index, dtype="string").where(
                vals.notna() & (vals != ""))
        else:
            cand = key + "=" + vals
        hit = cand.isin(known).fillna(False).astype(bool)
        out = out.where(~hit, cand)
    # Tags present but not in the table: keep the first one so that it is reported by name.
    first = pd.Series(pd.NA, index=gdf.index, dtype="string")
    for key in reversed(OSM_KEYS):
        vals = tags[key].astype("string").str.strip().str.lower()
        first = first.where(~(vals.notna() & (vals != "")), key + "=" + vals)
    return out.where(out != "", first.fillna(""))


def flatten_overlaps(gdf: gpd.GeoDataFrame, priority: list[str] | tuple[str, ...] | None = None,
                     *, column: str = "group") -> gpd.GeoDataFrame:
    """Make overlapping polygons disjoint: where they overlap, the higher-priority class wins.

    Each class is first dissolved (one multipolygon per class), then each polygon is cut by the
    union of all classes ranked above its own — one vectorised ``difference`` per class, not a
    loop over polygons.  Overlaps within one class are removed too (later rows lose to earlier
    ones only through the union: within a class the first polygon keeps the overlap).

    Parameters
    ----------
    gdf : GeoDataFrame
        Polygons with a class column.
    priority : sequence of str, optional
        Class values, highest first (default :data:`OSM_PRIORITY` over ``group``).  Classes not
        listed rank last, in order of appearance.
    column : str
        The class column.

    Returns
    -------
    GeoDataFrame
        A copy with disjoint geometries (empty results dropped), same columns.

    Examples
    --------
    A pond inside a park: the water keeps its area, the park loses the pond's.

    >>> import geopandas as gpd, shapely
    >>> osm = gpd.GeoDataFrame({"group": ["green", "blue"]},
    ...                        geometry=[shapely.box(0, 0, 100, 100), shapely.box(25, 25, 75, 75)],
    ...                        crs="EPSG:4548")
    >>> flatten_overlaps(osm).area.tolist()
    [7500.0, 2500.0]
    """
    priority = list(priority or OSM_PRIORITY)
    out = gdf.copy()
    values = out[column].astype(object)
    classes = priority + [c for c in pd.unique(values) if c not in priority]
    rank = values.map({c: i for i, c in enumerate(classes)}).to_numpy()
    geoms = out.geometry.to_numpy().copy()
    above = None  # union of the classes already placed
    for i in range(len(classes)):
        sel = np.flatnonzero(rank == i)
        if not len(sel):
            continue
        mine = geoms[sel]
        if above is not None:
            mine = shapely.difference(mine, above)
        cls_union = shapely.union_all(mine)
        if len(sel) > 1:
            mine = _disjoint_within(mine)
        geoms[sel] = mine
        above = cls_union if above is None else shapely.union(above, cls_union)
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    keep = ~(out.geometry.is_empty | (out.geometry.area <= 0))
    return out[keep]


def _disjoint_within(geoms: np.ndarray) -> np.ndarray:
    """Polygons of one class made disjoint: each loses what earlier rows already cover."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    earlier = right < left
    left, right = left[earlier], right[earlier]
    if not len(left):
        return geoms
    # Union of the earlier neighbours of each polygon, grouped in one dissolve.
    cutters = gpd.GeoDataFrame({"row": left}, geometry=geoms[right]).dissolve("row")
    rows = cutters.index.to_numpy()
    out = geoms.copy()
    out[rows] = shapely.difference(geoms[rows], cutters.geometry.to_numpy())
    return out


# ---------------------------------------------------------------------------------------------
# Unknown codes
# ---------------------------------------------------------------------------------------------
def unknown_codes(codes: pd.Series, scheme: str | Path, *,
                  areas_m2: pd.Series | None = None) -> pd.DataFrame:
    """Codes not in the scheme's table, with how many parcels and how much area they carry.

    Parameters
    ----------
    codes : pandas.Series
        Raw codes.
    scheme : str or Path
        See :func:`load_code_table`.
    areas_m2 : pandas.Series, optional
        Parcel areas [m²], aligned to ``codes``.

    Returns
    -------
    pandas.DataFrame
        ``code, parcels, area_ha`` (area NaN without ``areas_m2``), largest area first.

    Examples
    --------
    >>> unknown_codes(pd.Series(["0301", "9999", "9999", ""]), "gbt21010",
    ...               areas_m2=pd.Series([1e4, 2e4, 3e4, 5e3]))
          code  parcels  area_ha
    0     9999        2      5.0
    1  <empty>        1      0.5
    """
    norm = normalise_codes(codes, scheme)
    unknown = norm["class_code"].isna()
    code = norm["code"].fillna("<empty>").where(norm["code"].fillna("") != "", "<empty>")
    area = (areas_m2.reindex(codes.index).astype(float) if areas_m2 is not None
            else pd.Series(np.nan, index=codes.index))
    frame = pd.DataFrame({"code": code[unknown], "area_m2": area[unknown]})
    out = frame.groupby("code", sort=True).agg(parcels=("area_m2", "size"),
                                               area_ha=("area_m2", lambda s: s.sum(min_count=1)))
    out["area_ha"] = out["area_ha"] / 1e4
    out = out.reset_index().sort_values(["area_ha", "parcels"], ascending=False,
                                        na_position="last", kind="stable")
    out["parcels"] = out["parcels"].astype("int64")
    return out.reset_index(drop=True)


def code_problems(codes: pd.Series, scheme: str | Path, *, areas_m2: pd.Series | None = None,
                  file: str | None = None, layer: str | None = "landuse",
                  column: str | None = "code") -> list[Problem]:
    """Warnings for the validate step: unknown codes and codes counted as their base class.

    Unknown codes are never dropped silently: each gets a warning with its parcel count and
    area, saying that it counts as neither blue, green nor forest.
    """
    problems: list[Problem] = []
    for row in unknown_codes(codes, scheme, areas_m2=areas_m2).itertuples(index=False):
        area = "" if pd.isna(row.area_ha) else f", {row.area_ha:.2f} ha"
        problems.append(Problem(
            f"land-use code not in the {scheme} table: {row.parcels} parcels{area}; counted as "
            "neither blue, green nor forest", file=file, layer=layer, column=column,
            value=row.code, severity="warning",
            hint="fix the code, choose the right scheme, or give a mapping CSV that lists it"))
    norm = normalise_codes(codes, scheme)
    fb = norm.loc[norm["fallback"]].groupby(["code", "class_code"]).size()
    for (code, base), n in fb.items():
        problems.append(Problem(
            f"land-use code not in the {scheme} table, counted as its base class {base} "
            f"({n} parcels)", file=file, layer=layer, column=column, value=code,
            severity="warning", hint="add the code to a mapping CSV to classify it explicitly"))
    return problems


def species_group(species: pd.Series, *, default: str = "broadleaf") -> pd.Series:
    """Carbon-factor species group of each stand's species name (Chinese or English).

    Unknown or missing species take ``default`` (mixed broadleaf).

    Examples
    --------
    >>> species_group(pd.Series(["毛白杨", "刺槐", "侧柏", "银杏", None])).tolist()
    ['poplar', 'hard_broadleaf', 'cypress', 'broadleaf', 'broadleaf']
    """
    text = species.astype("string").str.lower().fillna("")
    out = pd.Series(pd.NA, index=species.index, dtype="string")
    for group, names in SPECIES_GROUPS.items():
        pattern = "|".join(re.escape(n) for n in names)
        hit = text.str.contains(pattern, regex=True) & out.isna()
        out = out.mask(hit, group)
    return out.fillna(default)


__all__ = [
    "CARBON_FACTORS", "DEFAULT_STOCK_M3_HA", "EcologyOptions", "OSM_PRIORITY", "SCHEMES",
    "classify", "classify_layer", "classify_osm", "code_problems", "ecology_options",
    "flatten_overlaps", "load_code_table", "normalise_codes", "species_group", "unknown_codes",
]
