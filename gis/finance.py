"""What a PV site costs and pays: capex, savings, payback, NPV, IRR, LCOE and the EMC split.

Per site (a roof or a ground parcel), vectorised over the whole table — no loop over sites; the
only loops run over the lifetime's years (25) or over bisection steps:

- capex [元] = capacity [kWp] × (capex [元/kWp] of the system type − capex subsidy [元/kWp]);
- O&M [元/yr] = capacity × O&M [元/kWp/yr] (constant in nominal terms);
- value of one kWh [元/kWh] = s × retail tariff of the user type + (1 − s) × export price,
  with s the share consumed on site (by building category or ground kind); a per-kWh subsidy
  is added for its first ``subsidy_years``;
- energy in year t [kWh] = first-year energy × (1 − degradation)^(t − 1);
- first-year savings [元/yr] = first-year energy × value (+ subsidy);
- simple payback [yr] = capex ÷ (first-year savings − O&M) (empty when that is not positive);
- NPV [元] = −capex + Σₜ (savingsₜ − O&M) ÷ (1 + r)^t, t = 1 … lifetime;
- IRR [-]: the rate where NPV = 0, by bisection on all sites at once (empty when the cash flows
  never change sign);
- LCOE [元/kWh] = (capex + Σₜ O&M ÷ (1 + r)^t) ÷ Σₜ energyₜ ÷ (1 + r)^t;
- energy-performance contract (合同能源管理, shared savings 节能效益分享型): the owner keeps
  ``emc_owner_share`` of the savings, the investor the rest and pays capex and O&M.

Defaults are for Tianjin; each is cited in :data:`SOURCES` and every value can be overridden by the
run file's ``[finance]`` table.

Examples
--------
A 100 kWp factory roof yielding 130 000 kWh in its first year, all consumed on site at 0.70 元/kWh,
3 000 元/kWp, 50 元/kWp/yr, no degradation, 10 years at 5 %:

>>> p = finance_params(capex_yuan_kwp={"commercial_industrial": 3000},
...                    om_yuan_kwp_yr={"commercial_industrial": 50},
...                    retail_tariff_yuan_kwh={"commercial_industrial": 0.70},
...                    self_consumption_share={"industrial": 1.0}, degradation_per_year=0.0,
...                    lifetime_years=10, discount_rate=0.05)
>>> f = site_finance([100.0], [130_000.0], ["industrial"], params=p)
>>> f[["capex_yuan", "annual_savings_yuan", "annual_om_yuan", "payback_years"]].round(3)
   capex_yuan  annual_savings_yuan  annual_om_yuan  payback_years
0    300000.0              91000.0          5000.0          3.488
>>> round(float(f.loc[0, "npv_yuan"]), 1), round(float(f.loc[0, "irr"]), 4)
(364069.2, 0.2577)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from gis._errors import InputError, Problem, suggest
from gis.config import CATEGORIES
from gis.config import is_number as _is_number

#: Ground-mounted kinds (see :mod:`gis.ground`).
GROUND_KINDS = ("fishery", "facility_agri", "roadside")
#: Site types: building categories and ground kinds.
SITE_TYPES = CATEGORIES + GROUND_KINDS
#: System types (capex and O&M are given per system type).
SYSTEM_TYPES = ("residential", "commercial_industrial") + GROUND_KINDS
#: User types (retail tariffs are given per user type).
USER_TYPES = ("residential", "commercial_industrial", "agriculture")

#: Which system a site type installs (capex, O&M).
SYSTEM_OF: dict[str, str] = {
    "government": "commercial_industrial", "public": "commercial_industrial",
    "commercial": "commercial_industrial", "industrial": "commercial_industrial",
    "residential": "residential", "rural_residential": "residential",
    "other": "commercial_industrial",
    "fishery": "fishery", "facility_agri": "facility_agri", "roadside": "roadside",
}

#: Finance columns added to every site list.
FINANCE_COLUMNS = ("capex_yuan", "annual_savings_yuan", "annual_om_yuan", "payback_years",
                   "npv_yuan", "irr", "lcoe_yuan_kwh", "self_consumption_share",
                   "value_yuan_kwh", "emc_owner_yuan", "emc_investor_yuan",
                   "emc_investor_payback_years")

#: Where each default comes from (written to run.json with the values).
SOURCES: dict[str, str] = {
    "export_price_yuan_kwh": (
        "Tianjin coal-fired benchmark price 天津燃煤发电基准价 0.3655 元/kWh (incl. "
        "desulphurisation, denitration, dust removal): NDRC 发改价格规〔2019〕1658号 fixed the "
        "benchmark at each province's former coal benchmark tariff; distributed and ground PV "
        "approved from 2021 sell at this price without subsidy (发改价格〔2021〕833号)"),
    "retail_tariff_yuan_kwh": (
        "residential: Tianjin tiered residential tariff, first block 0.49 元/kWh (一户一表, "
        "< 1 kV); commercial_industrial: planning estimate 0.70 元/kWh of the 1–10 kV single-part "
        "general industrial & commercial tariff under State Grid Tianjin's monthly agency "
        "purchase prices (国网天津市电力公司代理购电价格, varies by month and time of use); "
        "agriculture: planning estimate 0.48 元/kWh (agricultural production tariff) — override "
        "with the site's own tariff"),
    "capex_yuan_kwp": (
        "CPIA 中国光伏产业发展路线图 (2023): initial investment of C&I distributed PV 3.18 元/W, "
        "ground-mounted 3.40 元/W; residential 3.5 元/W (small systems, estimate); fishery racks "
        "over water on piles 3.9, raised agrivoltaic racks 3.8, roadside single rows 3.6 元/W "
        "(ground-mounted plus an estimated premium for the structure)"),
    "om_yuan_kwp_yr": (
        "estimates within the 0.04–0.06 元/W/yr O&M range reported by CPIA for 2023; more for "
        "access over water"),
    "degradation_per_year": (
        "MIIT 光伏制造行业规范条件（2021年本）: monocrystalline modules degrade ≤ 0.55 %/yr after the "
        "first year (first-year loss ≤ 2 % not modelled apart)"),
    "lifetime_years": "25-year design life of PV plants (module warranties; GB 50797-2012)",
    "discount_rate": (
        "8 % social discount rate, 建设项目经济评价方法与参数（第三版）(NDRC & MOHURD 2006)"),
    "self_consumption_share": (
        "planning estimates by load profile: factories and shops use most daytime output, "
        "households little; ponds (aerators), greenhouses some; roadside rows feed the grid"),
    "user_type": "tariff class of the consumer on site",
    "subsidy_yuan_kwh": (
        "0: no central subsidy for new distributed or ground PV since 2021/2022 "
        "(发改价格〔2021〕833号); set a local per-kWh subsidy here"),
    "capex_subsidy_yuan_kwp": "0: set a local investment subsidy here",
    "emc_owner_share": (
        "shared-savings energy-performance contract (合同能源管理, GB/T 24915-2020): the owner's "
        "share of the savings, planning estimate 20 %"),
}


#: How the figures are computed (written to run.json beside the inputs).
CONVENTIONS: dict[str, str] = {
    "capex_yuan": "capacity_kwp × (capex_yuan_kwp[system_type] − capex_subsidy_yuan_kwp), year 0",
    "value_yuan_kwh": "s × retail_tariff_yuan_kwh[user_type] + (1 − s) × export_price_yuan_kwh, "
                      "s = self_consumption_share[site type]",
    "annual_savings_yuan": "first-year kWh × (value_yuan_kwh + subsidy_yuan_kwh if "
                           "subsidy_years ≥ 1)",
    "energy_year_t": "first-year kWh × (1 − degradation_per_year)^(t − 1), t = 1 … lifetime_years",
    "payback_years": "capex ÷ (first-year savings − O&M); empty when not positive",
    "npv_yuan": "−capex + Σ_t (savings_t − O&M) ÷ (1 + discount_rate)^t, flows at the end of "
                "each year",
    "irr": "the rate where npv = 0",
    "lcoe_yuan_kwh": "(capex + Σ_t O&M ÷ (1 + r)^t) ÷ Σ_t energy_t ÷ (1 + r)^t",
    "emc": "owner: emc_owner_share × savings; investor: the rest, paying capex and O&M",
}


@dataclass(frozen=True)
class FinanceParams:
    """Every money assumption; defaults for Tianjin (:data:`SOURCES`).

    Parameters
    ----------
    capex_yuan_kwp : dict
        Capital cost by system type (:data:`SYSTEM_TYPES`) [元/kWp].
    om_yuan_kwp_yr : dict
        Operation and maintenance by system type [元/kWp/yr].
    degradation_per_year : float
        Yearly loss of output [-].
    lifetime_years : int
        Years of operation [yr].
    discount_rate : float
        Real discount rate [-/yr].
    export_price_yuan_kwh : float
        Price of power fed into the grid [元/kWh].
    retail_tariff_yuan_kwh : dict
        Tariff the consumer on site would otherwise pay, by user type [元/kWh].
    user_type : dict
        User type of each site type (categories and ground kinds).
    self_consumption_share : dict
        Share of the output consumed on site, by site type [-].
    subsidy_yuan_kwh, subsidy_years : float, int
        Subsidy per kWh generated [元/kWh] for the first ``subsidy_years`` years.
    capex_subsidy_yuan_kwp : float
        Investment subsidy [元/kWp].
    emc_owner_share : float
        Owner's share of the savings under an energy-performance contract [-].
    """

    capex_yuan_kwp: dict[str, float] = field(default_factory=lambda: {
        "residential": 3500.0, "commercial_industrial": 3180.0, "fishery": 3900.0,
        "facility_agri": 3800.0, "roadside": 3600.0})
    om_yuan_kwp_yr: dict[str, float] = field(default_factory=lambda: {
        "residential": 50.0, "commercial_industrial": 45.0, "fishery": 55.0,
        "facility_agri": 50.0, "roadside": 50.0})
    degradation_per_year: float = 0.0055
    lifetime_years: int = 25
    discount_rate: float = 0.08
    export_price_yuan_kwh: float = 0.3655
    retail_tariff_yuan_kwh: dict[str, float] = field(default_factory=lambda: {
        "residential": 0.49, "commercial_industrial": 0.70, "agriculture": 0.48})
    user_type: dict[str, str] = field(default_factory=lambda: {
        "government": "commercial_industrial", "public": "commercial_industrial",
        "commercial": "commercial_industrial", "industrial": "commercial_industrial",
        "residential": "residential", "rural_residential": "residential",
        "other": "commercial_industrial", "fishery": "agriculture",
        "facility_agri": "agriculture", "roadside": "commercial_industrial"})
    self_consumption_share: dict[str, float] = field(default_factory=lambda: {
        "government": 0.7, "public": 0.6, "commercial": 0.8, "industrial": 0.85,
        "residential": 0.3, "rural_residential": 0.2, "other": 0.5, "fishery": 0.1,
        "facility_agri": 0.3, "roadside": 0.0})
    subsidy_yuan_kwh: float = 0.0
    subsidy_years: int = 0
    capex_subsidy_yuan_kwp: float = 0.0
    emc_owner_share: float = 0.2

    def as_dict(self) -> dict[str, Any]:
        """Plain values with their sources (for run.json ``settings.finance``)."""
        out = asdict(self)
        out["system_type"] = dict(SYSTEM_OF)
        out["conventions"] = dict(CONVENTIONS)
        out["sources"] = dict(SOURCES)
        return out


_DICT_KEYS = {"capex_yuan_kwp": SYSTEM_TYPES, "om_yuan_kwp_yr": SYSTEM_TYPES,
              "retail_tariff_yuan_kwh": USER_TYPES, "user_type": SITE_TYPES,
              "self_consumption_share": SITE_TYPES}
_FRACTIONS = ("degradation_per_year", "emc_owner_share")
_INTS = ("lifetime_years", "subsidy_years")


def finance_params(**table: Any) -> FinanceParams:
    """Finance assumptions: the Tianjin defaults with the run file's ``[finance]`` overrides.

    Tables (``capex_yuan_kwp`` …) are merged key by key with the defaults.

    Raises
    ------
    InputError
        Listing every unknown key, wrong type or out-of-range value (named ``finance.<key>``).

    Examples
    --------
    >>> p = finance_params(discount_rate=0.06, capex_yuan_kwp={"fishery": 4200})
    >>> p.discount_rate, p.capex_yuan_kwp["fishery"], p.capex_yuan_kwp["roadside"]
    (0.06, 4200.0, 3600.0)
    >>> finance_params(discount=0.06)
    Traceback (most recent call last):
    ...
    gis._errors.InputError: error: column 'finance.discount': unknown finance parameter -> did you mean 'discount_rate'? ...
    """
    problems: list[Problem] = []
    defaults = FinanceParams()
    known = {f.name for f in fields(FinanceParams)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"finance.{key}"
        if key not in known:
            problems.append(Problem("unknown finance parameter", column=where,
                                    hint=suggest(key, known)))
        elif key in _DICT_KEYS:
            merged = _check_table(key, value, getattr(defaults, key), problems)
            if merged is not None:
                values[key] = merged
        elif key in _INTS:
            if not (_is_number(value) and float(value) == int(value) and value >= 0):
                problems.append(Problem("must be a whole number ≥ 0", column=where, value=value))
            elif key == "lifetime_years" and not 1 <= value <= 60:
                problems.append(Problem("must be between 1 and 60 years", column=where,
                                        value=value))
            else:
                values[key] = int(value)
        elif not _is_number(value):
            problems.append(Problem("must be a number", column=where, value=value))
        elif key in _FRACTIONS and not 0 <= value <= 1:
            problems.append(Problem("must be a fraction between 0 and 1", column=where,
                                    value=value, hint="write 0.2 for 20 %"))
        elif key == "discount_rate" and not -0.5 < value < 1:
            problems.append(Problem("must be a rate between -0.5 and 1 (0.08 = 8 %)",
                                    column=where, value=value))
        elif value < 0 and key != "discount_rate":
            problems.append(Problem("must not be negative", column=where, value=value))
        else:
            values[key] = float(value)
    if problems:
        raise InputError(problems)
    return replace(defaults, **values)


def _check_table(key: str, value: Any, default: dict, problems: list[Problem]) -> dict | None:
    where = f"finance.{key}"
    if not isinstance(value, dict):
        problems.append(Problem("must be a table: name = value", column=where, value=value))
        return None
    allowed = _DICT_KEYS[key]
    merged = dict(default)
    for sub, v in value.items():
        if sub not in allowed:
            problems.append(Problem("unknown name", column=f"{where}.{sub}",
                                    hint=suggest(sub, allowed)))
        elif key == "user_type":
            if v not in USER_TYPES:
                problems.append(Problem("unknown user type", column=f"{where}.{sub}", value=v,
                                        hint="use one of " + ", ".join(USER_TYPES)))
            else:
                merged[sub] = v
        elif not _is_number(v) or v < 0:
            problems.append(Problem("must be a number ≥ 0", column=f"{where}.{sub}", value=v))
        elif key == "self_consumption_share" and v > 1:
            problems.append(Problem("must be a fraction between 0 and 1", column=f"{where}.{sub}",
                                    value=v))
        else:
            merged[sub] = float(v)
    return merged


# ---------------------------------------------------------------------------------------------
# Cash flows


def _present_value(flows_per_year, rate: np.ndarray, years: int) -> np.ndarray:
    """Σₜ flowₜ ÷ (1 + rate)^t for t = 1 … years, by Horner's rule over the years.

    ``flows_per_year(t)`` returns the flows of year ``t`` for every site (or an array
    (years, sites)); ``rate`` is a scalar or one rate per site.  The loop runs over the years,
    each step over all sites at once.
    """
    x = 1.0 / (1.0 + rate)
    if callable(flows_per_year):
        rows = [flows_per_year(t) for t in range(1, years + 1)]
    else:
        rows = flows_per_year  # an array (years, sites): row t − 1 holds year t
    total = np.zeros(np.broadcast(x, rows[0]).shape)
    for t in range(years, 0, -1):
        total += rows[t - 1]
        total *= x
    return total


def site_finance(capacity_kwp, annual_kwh, site_type, *,
                 params: FinanceParams | None = None) -> pd.DataFrame:
    """Money figures of PV sites, all sites at once.

    Parameters
    ----------
    capacity_kwp : array-like
        Installed capacity per site [kWp].
    annual_kwh : array-like
        First-year energy per site [kWh/yr].
    site_type : array-like of str
        Building category (:data:`gis.config.CATEGORIES`) or ground kind (:data:`GROUND_KINDS`);
        unknown types are priced as ``other``.
    params : FinanceParams, optional
        Default :func:`finance_params` ().

    Returns
    -------
    pandas.DataFrame
        Aligned to the inputs (index of ``capacity_kwp`` when it is a Series), columns
        :data:`FINANCE_COLUMNS`: ``capex_yuan`` [元], ``annual_savings_yuan`` [元/yr, first
        year], ``annual_om_yuan`` [元/yr], ``payback_years`` [yr], ``npv_yuan`` [元], ``irr``
        [-/yr], ``lcoe_yuan_kwh`` [元/kWh], ``self_consumption_share`` [-], ``value_yuan_kwh``
        [元/kWh, without subsidy], ``emc_owner_yuan`` and ``emc_investor_yuan`` [元/yr, first
        year], ``emc_investor_payback_years`` [yr].  Sites without capacity get zeros and empty
        ratios.
    """
    p = params or finance_params()
    index = capacity_kwp.index if isinstance(capacity_kwp, pd.Series) else None
    cap = np.nan_to_num(np.asarray(capacity_kwp, dtype=float))
    energy = np.nan_to_num(np.asarray(annual_kwh, dtype=float))
    # a few distinct types: look each up once, then broadcast by position
    codes, uniq = pd.factorize(np.asarray(site_type, dtype=object))
    uniq = [u if u in SITE_TYPES else "other" for u in uniq] + ["other"]  # -1: missing
    codes = np.where(codes < 0, len(uniq) - 1, codes)

    def per_site(values) -> np.ndarray:
        return np.asarray(values, dtype=float)[codes]

    capex_kwp = per_site([p.capex_yuan_kwp[SYSTEM_OF[u]] for u in uniq])
    om_kwp = per_site([p.om_yuan_kwp_yr[SYSTEM_OF[u]] for u in uniq])
    tariff = per_site([p.retail_tariff_yuan_kwh[p.user_type[u]] for u in uniq])
    share = per_site([p.self_consumption_share.get(u, 0.0) for u in uniq])
    value = share * tariff + (1.0 - share) * p.export_price_yuan_kwh
    has = cap > 0

    capex = cap * np.maximum(capex_kwp - p.capex_subsidy_yuan_kwp, 0.0)
    om = cap * om_kwp
    subsidy_1 = p.subsidy_yuan_kwh if p.subsidy_years >= 1 else 0.0
    savings = energy * (value + subsidy_1)
    n, d = p.lifetime_years, p.degradation_per_year

    def net(t: int, energy=energy, value=value, om=om) -> np.ndarray:
        sub = p.subsidy_yuan_kwh if t <= p.subsidy_years else 0.0
        return energy * (1.0 - d) ** (t - 1) * (value + sub) - om

    def kwh(t: int) -> np.ndarray:
        return energy * (1.0 - d) ** (t - 1)

    r = p.discount_rate
    flows = np.array([net(t) for t in range(1, n + 1)])  # (years, sites), built once
    npv = -capex + _present_value(flows, r, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = savings - om
        payback = np.where(has & (margin > 0), capex / margin, np.nan)
        lcoe = np.where(has & (energy > 0),
                        (capex + _present_value(lambda t: om, r, n)) / _present_value(kwh, r, n),
                        np.nan)
        owner = savings * p.emc_owner_share
        investor = savings - owner
        inv_margin = investor - om
        inv_payback = np.where(has & (inv_margin > 0), capex / inv_margin, np.nan)
    irr = np.where(has, irr_bisection(capex, flows, n), np.nan)
    out = pd.DataFrame({
        "capex_yuan": capex, "annual_savings_yuan": savings, "annual_om_yuan": om,
        "payback_years": payback, "npv_yuan": np.where(has, npv, 0.0), "irr": irr,
        "lcoe_yuan_kwh": lcoe, "self_consumption_share": share, "value_yuan_kwh": value,
        "emc_owner_yuan": owner, "emc_investor_yuan": investor,
        "emc_investor_payback_years": inv_payback,
    }, index=index)
    return out


def irr_bisection(capex: np.ndarray, net, years: int, *, low: float = -0.99,
                  high: float = 10.0, steps: int = 48) -> np.ndarray:
    """Internal rate of return of every site: NPV(rate) = 0 by bisection, all sites at once.

    Parameters
    ----------
    capex : numpy.ndarray
        Outlay at year 0 per site [元].
    net : callable or numpy.ndarray
        ``net(t)`` → net cash flow of year ``t`` per site [元], or those flows as an array
        (years, sites).
    years : int
        Lifetime [yr].
    low, high : float
        Bracket of rates searched [-/yr].
    steps : int
        Bisection steps (48 narrow the bracket of width 11 below 10⁻¹³).

    Returns
    -------
    numpy.ndarray
        The rate per site [-/yr]; NaN where NPV does not change sign within the bracket
        (a site that never recovers its capex, or no capex).

    Examples
    --------
    An outlay of 100 returning 110 after one year has an IRR of 10 %:

    >>> float(irr_bisection(np.array([100.0]), lambda t: np.array([110.0]), 1)[0]).__round__(10)
    0.1
    """
    capex = np.asarray(capex, dtype=float)
    flows = np.array([np.broadcast_to(net(t), capex.shape) for t in range(1, years + 1)],
                     dtype=float) if callable(net) else np.asarray(net, dtype=float)

    def npv(rate):
        return -capex + _present_value(flows, rate, years)

    lo = np.full(capex.shape, low)
    hi = np.full(capex.shape, high)
    f_lo, f_hi = npv(lo), npv(hi)
    ok = (np.sign(f_lo) != np.sign(f_hi)) & np.isfinite(f_lo) & np.isfinite(f_hi) & (capex > 0)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        f_mid = npv(mid)
        same = np.sign(f_mid) == np.sign(f_lo)
        lo = np.where(same, mid, lo)
        f_lo = np.where(same, f_mid, f_lo)
        hi = np.where(same, hi, mid)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


def add_finance(sites: pd.DataFrame, *, type_column: str,
                params: FinanceParams | None = None) -> pd.DataFrame:
    """A copy of a site table with the finance columns (:data:`FINANCE_COLUMNS`) added.

    Parameters
    ----------
    sites : DataFrame
        With ``capacity_kwp`` [kWp], ``annual_kwh`` [kWh/yr] and ``type_column``.
    type_column : str
        ``category`` for roofs, ``kind`` for ground sites.
    params : FinanceParams, optional
        Default :func:`finance_params` ().
    """
    money = site_finance(sites["capacity_kwp"].astype(float), sites["annual_kwh"].astype(float),
                         sites[type_column], params=params)
    out = sites.drop(columns=[c for c in FINANCE_COLUMNS if c in sites.columns])
    # no yield (no weather near the district): what follows from the energy is missing, never
    # 0; the cost (capex, O&M) follows from the capacity alone and is kept
    no_yield = sites["annual_kwh"].isna().to_numpy()
    for col in FINANCE_COLUMNS:
        values = money[col].to_numpy()
        if no_yield.any() and col not in YIELD_FREE_COLUMNS:
            values = np.where(no_yield, np.nan, values.astype(float))
        out[col] = values
    return out


#: Finance columns that need no yield (kept when ``annual_kwh`` is missing): the cost follows
#: from the capacity, the value of a kWh from the settings.
YIELD_FREE_COLUMNS = ("capex_yuan", "annual_om_yuan", "self_consumption_share", "value_yuan_kwh")


def finance_by(sites: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Totals of the sites with PV per ``by`` (street, kind …): cost, savings, NPV, payback.

    Returns
    -------
    DataFrame
        Columns ``by``, ``sites``, ``capacity_kwp``, ``annual_kwh``, ``capex_yuan``,
        ``annual_savings_yuan``, ``annual_om_yuan``, ``npv_yuan``, ``emc_owner_yuan``,
        ``emc_investor_yuan``, ``payback_years`` (of the totals: Σ capex ÷ (Σ savings − Σ O&M)).

    Examples
    --------
    >>> sites = pd.DataFrame({"street": ["A", "A", "B"], "capacity_kwp": [10.0, 20.0, 0.0],
    ...                       "annual_kwh": [1.0, 2.0, 0.0], "capex_yuan": [30.0, 60.0, 0.0],
    ...                       "annual_savings_yuan": [10.0, 20.0, 0.0],
    ...                       "annual_om_yuan": [1.0, 2.0, 0.0], "npv_yuan": [5.0, 6.0, 0.0],
    ...                       "emc_owner_yuan": [2.0, 4.0, 0.0],
    ...                       "emc_investor_yuan": [8.0, 16.0, 0.0]})
    >>> finance_by(sites, "street")[["street", "sites", "capex_yuan", "payback_years"]]
      street  sites  capex_yuan  payback_years
    0      A      2        90.0       3.333333
    """
    keys = [by] if isinstance(by, str) else list(by)
    cols = ["capacity_kwp", "annual_kwh", "capex_yuan", "annual_savings_yuan", "annual_om_yuan",
            "npv_yuan", "emc_owner_yuan", "emc_investor_yuan"]
    sel = sites[pd.to_numeric(sites["capacity_kwp"], errors="coerce").fillna(0) > 0]
    frame = sel[cols].astype(float)
    for k in keys:
        frame[k] = sel[k].astype("string").fillna("(unassigned)")
    grouped = frame.groupby(keys, sort=True)
    table = grouped[cols].sum(min_count=1)  # missing yields stay missing
    table.insert(0, "sites", grouped.size())
    margin = table["annual_savings_yuan"] - table["annual_om_yuan"]
    table["payback_years"] = (table["capex_yuan"] / margin).where(margin > 0)
    return table.reset_index()
