"""The system cost's terms are listed once (engine/terms.py): each is a summary column, the weighted columns add
up to system_cost on replays of both engines (with a device and without), and COST_TERMS, results.summarize
and opt read the list rather than keeping their own."""

import dataclasses
import math

import numpy as np
import pytest

from pfmbench import api, opt
from pfmbench.engine import record as C
from pfmbench.engine import terms
from pfmbench.engine.record import new_totals
from pfmbench.engine.tables import Tables, build_tables
from pfmbench.results import COST_TERMS, summarize
from pfmbench.scenario import Scenario, Weights
from pfmbench.trace.schema import TraceArrays


def test_every_term_is_a_summary_column_with_a_weight():
    t = new_totals()
    row = summarize(t.counts, t.sums, t.hist, Scenario(), "x", "t", "c")
    weights = {f.name for f in dataclasses.fields(Weights)}
    for term in terms.TERMS:
        assert term.column in row, term
        assert term.weight in weights and "w_" + term.weight in Tables._fields, term
        assert all(0 <= s < C.N_SUMS for s in term.sums), term


def test_cost_terms_are_read_off_the_table(monkeypatch):
    assert COST_TERMS == tuple((t.column, t.weight) for t in terms.TERMS)
    # A term added to the table is a summary column and in system_cost with no other edit.
    t = new_totals()
    t.sums[C.S_COMPUTE_ENERGY] = 4000.0
    sc = Scenario()
    before = summarize(t.counts, t.sums, t.hist, sc, "x", "t", "c")["system_cost"]
    monkeypatch.setattr(terms, "TERMS", (*terms.TERMS, terms.Term("compute_energy_kj", "cloud", (C.S_COMPUTE_ENERGY,),
                                                                  1000.0)))
    row = summarize(t.counts, t.sums, t.hist, sc, "x", "t", "c")
    assert row["compute_energy_kj"] == 4.0
    assert row["system_cost"] == before + sc.weights.cloud * 4.0


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("device_gb", [0.0, 2.0])
def test_weighted_terms_add_up_to_system_cost(engine, device_gb):
    rows = api.replay_many(None, ["lru", "lc-cost", "active"], engine=engine, **{
        "trace.requests": 400, "edge.gpu_memory_gb": 40, "device.memory_gb": device_gb, "serving.admission": "cost",
        "weights.cloud_latency": 0.5, "weights.device_energy": 3.0, "weights.wear_per_load": 0.2})
    for r in rows:
        total = sum(r[f"setting_weights_{w}"] * r[col] for col, w in COST_TERMS)
        assert math.isclose(total, r["system_cost"], rel_tol=1e-12), (r["policy"], total, r["system_cost"])
        assert r["system_cost"] > 0
    if device_gb:
        assert any(r["device_served"] > 0 for r in rows)  # the device's terms are exercised
    assert any(r["preloads"] > 0 for r in rows)  # active's preloads (S_PRELOAD_SWITCHING)


def test_opt_and_results_share_one_system_cost():
    """opt's exact cost and the summary of its replay are one function of the same sums: equal to the bit."""
    sc = Scenario()
    sc.edge.gpu_memory_gb = 30
    sc.weights.cloud_latency = 0.7
    cat = sc.load_catalog()
    tables = build_tables(sc, cat)
    rng = np.random.default_rng(5)
    n = 30
    trace = TraceArrays(np.cumsum(rng.exponential(2.0, n)), rng.integers(0, 6, n).astype(np.int32),
                        rng.choice([16.0, 128.0], n), np.full(n, 0.2))
    r = opt.solve(tables, trace, exact=True)
    row = summarize(r.totals.counts, r.totals.sums, r.totals.hist, sc, "opt", "t", "c")
    assert r.system_cost == row["system_cost"]
    assert r.system_cost == terms.system_cost(terms.table_weights(tables), r.totals.sums)
