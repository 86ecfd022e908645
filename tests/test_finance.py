"""Money per PV site: hand-computed payback, NPV, IRR, LCOE and the EMC split."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis._errors import InputError
from gis.finance import (
    FINANCE_COLUMNS,
    add_finance,
    finance_by,
    finance_params,
    irr_bisection,
    site_finance,
)

# 100 kWp on a factory roof, 130 000 kWh in the first year, all consumed on site at 0.70 元/kWh,
# 3 000 元/kWp, 50 元/kWp/yr, 10 years at 5 %.
HAND = dict(capex_yuan_kwp={"commercial_industrial": 3000},
            om_yuan_kwp_yr={"commercial_industrial": 50},
            retail_tariff_yuan_kwh={"commercial_industrial": 0.70},
            self_consumption_share={"industrial": 1.0}, lifetime_years=10, discount_rate=0.05)


def _npv_by_hand(capex, first_kwh, value, om, rate, years, degradation):
    flows = [first_kwh * (1 - degradation) ** (t - 1) * value - om for t in range(1, years + 1)]
    return -capex + sum(f / (1 + rate) ** t for t, f in enumerate(flows, start=1))


def test_payback_npv_irr_lcoe_by_hand_without_degradation():
    p = finance_params(**HAND, degradation_per_year=0.0)
    f = site_finance([100.0], [130_000.0], ["industrial"], params=p).iloc[0]
    assert f["capex_yuan"] == pytest.approx(300_000.0)
    assert f["annual_savings_yuan"] == pytest.approx(91_000.0)  # 130 000 kWh × 0.70 元/kWh
    assert f["annual_om_yuan"] == pytest.approx(5_000.0)
    assert f["payback_years"] == pytest.approx(300_000 / 86_000)
    annuity = (1 - 1.05 ** -10) / 0.05
    assert f["npv_yuan"] == pytest.approx(-300_000 + 86_000 * annuity)
    assert f["lcoe_yuan_kwh"] == pytest.approx((300_000 + 5_000 * annuity) / (130_000 * annuity))
    # the IRR is the rate where the NPV is zero
    irr = f["irr"]
    assert sum(86_000 / (1 + irr) ** t for t in range(1, 11)) == pytest.approx(300_000, rel=1e-9)
    assert f["emc_owner_yuan"] + f["emc_investor_yuan"] == pytest.approx(91_000.0)
    assert f["emc_owner_yuan"] == pytest.approx(0.2 * 91_000.0)
    assert f["emc_investor_payback_years"] == pytest.approx(300_000 / (0.8 * 91_000 - 5_000))


def test_npv_with_degradation_and_mixed_tariff_by_hand():
    """An industrial roof with the Tianjin defaults: 85 % self-consumed, the rest exported."""
    p = finance_params()
    value = 0.85 * 0.70 + 0.15 * 0.3655
    f = site_finance([200.0], [260_000.0], ["industrial"], params=p).iloc[0]
    assert f["value_yuan_kwh"] == pytest.approx(value)
    capex, om = 200 * 3180.0, 200 * 45.0
    assert f["capex_yuan"] == pytest.approx(capex)
    assert f["annual_savings_yuan"] == pytest.approx(260_000 * value)
    assert f["payback_years"] == pytest.approx(capex / (260_000 * value - om))
    assert f["npv_yuan"] == pytest.approx(
        _npv_by_hand(capex, 260_000, value, om, 0.08, 25, 0.0055), rel=1e-12)
    assert _npv_by_hand(capex, 260_000, value, om, f["irr"], 25, 0.0055) == pytest.approx(
        0.0, abs=1e-4)


def test_export_only_site_earns_the_coal_benchmark_price():
    f = site_finance([1000.0], [1_400_000.0], ["roadside"]).iloc[0]
    assert f["self_consumption_share"] == 0.0
    assert f["annual_savings_yuan"] == pytest.approx(1_400_000 * 0.3655)


def test_subsidy_per_kwh_for_two_years_adds_its_present_value():
    base = finance_params(**HAND, degradation_per_year=0.0)
    subsidised = finance_params(**HAND, degradation_per_year=0.0, subsidy_yuan_kwh=0.1,
                                subsidy_years=2)
    a = site_finance([100.0], [130_000.0], ["industrial"], params=base).iloc[0]
    b = site_finance([100.0], [130_000.0], ["industrial"], params=subsidised).iloc[0]
    assert b["npv_yuan"] - a["npv_yuan"] == pytest.approx(13_000 / 1.05 + 13_000 / 1.05 ** 2)
    assert b["annual_savings_yuan"] - a["annual_savings_yuan"] == pytest.approx(13_000.0)


def test_sites_without_capacity_or_that_never_pay_back():
    f = site_finance([0.0, 10.0], [0.0, 10.0], ["public", "fishery"])
    assert f.loc[0, "capex_yuan"] == 0 and f.loc[0, "npv_yuan"] == 0
    assert np.isnan(f.loc[0, "payback_years"]) and np.isnan(f.loc[0, "irr"])
    # 10 kWh a year never pays for 39 000 元
    assert np.isnan(f.loc[1, "payback_years"]) and np.isnan(f.loc[1, "irr"])
    assert f.loc[1, "npv_yuan"] < 0


def test_irr_is_vectorised_and_matches_polynomial_roots():
    rng = np.random.default_rng(1)
    n = 500
    capex = rng.uniform(1e4, 1e6, n)
    net = capex * rng.uniform(0.05, 0.4, n)
    years = 20
    irr = irr_bisection(capex, lambda t: net, years)
    # independent: the root of -capex·x^0 + Σ net·x^t in x = 1/(1+r), for a few sites
    for i in (0, 17, 499):
        coeffs = [net[i]] * years + [-capex[i]]  # highest power first: x^20 … x^1, x^0
        roots = np.roots(coeffs)
        x = roots[(abs(roots.imag) < 1e-9) & (roots.real > 0)].real
        assert irr[i] == pytest.approx(1 / x.max() - 1, rel=1e-8)


def test_finance_params_report_every_problem_at_once():
    with pytest.raises(InputError) as err:
        finance_params(discount=0.07, degradation_per_year=2, capex_yuan_kwp={"tower": 1},
                       self_consumption_share={"industrial": 1.5})
    columns = {p.column for p in err.value.problems}
    assert columns == {"finance.discount", "finance.degradation_per_year",
                       "finance.capex_yuan_kwp.tower", "finance.self_consumption_share.industrial"}


def test_add_finance_keeps_index_and_adds_every_column():
    pv = gpd.GeoDataFrame({"id": ["a", "b"], "category": ["residential", "government"],
                           "capacity_kwp": [5.0, 50.0], "annual_kwh": [6000.0, 65000.0],
                           "street": ["X", "Y"]},
                          geometry=[shapely.box(0, 0, 1, 1)] * 2, crs="EPSG:4548",
                          index=[10, 20])
    out = add_finance(pv, type_column="category")
    assert list(out.index) == [10, 20]
    assert set(FINANCE_COLUMNS) <= set(out.columns)
    assert out.loc[10, "capex_yuan"] == pytest.approx(5 * 3500.0)
    assert out.loc[10, "annual_savings_yuan"] == pytest.approx(6000 * (0.3 * 0.49 + 0.7 * 0.3655))
    by = finance_by(out, "street")
    assert by["capex_yuan"].sum() == pytest.approx(out["capex_yuan"].sum())


def test_sites_rank_by_payback_ascending_and_npv_descending():
    from gis.sites import select_sites

    pv = gpd.GeoDataFrame({"id": ["A", "B", "C"], "capacity_kwp": [1.0, 1.0, 1.0],
                           "annual_kwh": [1.0, 2.0, 3.0], "payback_years": [9.0, 4.0, np.nan],
                           "npv_yuan": [5.0, -1.0, 7.0]},
                          geometry=[shapely.box(0, 0, 1, 1)] * 3, crs="EPSG:4548")
    assert select_sites(pv, rank_by="payback_years")["id"].tolist() == ["B", "A", "C"]
    assert select_sites(pv, rank_by="npv_yuan")["id"].tolist() == ["C", "A", "B"]


def test_finance_table_in_a_run_file_is_checked(tmp_path):
    from gis.config import parse_runfile
    from gis.validate import _option_problems

    cfg = parse_runfile({"finance": {"discount_rate": "8%"},
                         "ground": {"kinds": ["farm"], "roads": "roads.gpkg"}}, base=tmp_path)
    columns = {p.column for p in _option_problems(cfg)}
    assert columns == {"finance.discount_rate", "ground.kinds", "ground.roads"}
