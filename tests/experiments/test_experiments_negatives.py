"""The negatives chapter beyond the protocol: its labels, its rows' columns, impossible values, Awasthi's check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import negatives as an
from experiments.engine import chapters, store
from experiments.engine.config import ConfigError
from theory import negatives as th

NAME = "negatives"


@pytest.fixture(scope="session")
def table(quick_results):
    return pd.read_csv(quick_results(NAME) / "bounds.csv")


@pytest.fixture(scope="session")
def rows(quick_results):
    root = quick_results(NAME)
    return store.load_rows(root, NAME, store.finished(root, NAME))


def test_model_kind_labels(table):
    assert set(table["model_kind"]) == {"trained", "untrained", "oracle"}
    measured = table[table["form"] == "measured"]
    assert (measured.loc[measured["step"] == 0, "model_kind"] == "untrained").all()
    assert (measured.loc[measured["step"] > 0, "model_kind"] == "trained").all()
    assert (table.loc[table["form"] == "optimum", "model_kind"] == "oracle").all()
    exact = table[table["form"] == "exact"]
    assert set(exact["model_kind"]) == {"oracle", "untrained"}
    # one optimum per (law, b, K) and theorem, the random tables beside it
    per = exact[exact["model_kind"] == "oracle"].groupby(["theorem", "law", "b", "K"]).size()
    assert (per == 1).all()


def test_every_row_carries_k_c_b_and_r_cont(table):
    for col in ("K", "C", "b", "R_cont", "model_kind"):
        assert table[col].notna().all(), col
    registry = {t.id: t for t in th.THEOREMS}
    for tid, g in table.groupby("theorem"):
        assert all(g[t].notna().all() for t in registry[tid].terms), tid


def test_arora_and_nozawa_are_outside_their_assumption_below_coverage(table):
    for tid in ("negatives.arora_2019", "negatives.nozawa_sato_2021"):
        g = table[table["theorem"] == tid]
        below = g["K"] + 1 < g["C"]
        assert below.any() and (g.loc[below, "verdict"] == "assumption not met").all()
        assert (g.loc[~below, "verdict"] != "assumption not met").all()


def test_optimum_rows_are_references_from_the_closed_forms(table):
    opt = table[table["form"] == "optimum"]
    assert len(opt) and set(opt["kind"]) == {"reference"}
    for _, r in opt.iterrows():
        assert r["measured"] == pytest.approx(th.r_supv_optimum(int(r["C"]), float(r["b"])), rel=1e-12)
        assert r["R_cont"] == pytest.approx(th.r_cont_optimum(int(r["C"]), int(r["K"]), float(r["b"])), rel=1e-12)


def test_the_finite_instance_has_no_violated_form(table):
    exact = table[table["form"] == "exact"]
    assert len(exact) and (exact["verdict"] != "violated").all()


def test_awasthi_check_has_every_k_and_says_whether_the_optimum_degrades(rows):
    cfg = chapters.load_config(NAME, "quick")
    aw = an.awasthi_check(rows)
    assert sorted(aw["K"].unique()) == sorted(cfg.finite.k)
    assert set(aw["law"]) == set(cfg.finite.class_laws)
    assert aw["degrades"].dtype == bool
    first = aw.groupby(["law", "b"])["change_from_first"].first()
    assert np.allclose(first, 0.0)


def test_tracking_gives_a_ratio_per_range_and_a_vacuity_k(table):
    med, vac = an.tracking(table)
    assert len(med) and set(vac["theorem"]) == {f"negatives.{n}" for n in an.UPPER}


@pytest.mark.parametrize("override,field", [
    ("finite.k=[1, 2, 2048]", "finite.k"),
    ("finite.n_classes=7", "finite.n_classes"),
    ("finite.overlap=1.0", "finite.overlap"),
    ('finite.class_laws=["explicit"]', "finite.class_laws"),
    ("sweep.b=[0.0]", "sweep.b"),
    ("sweep.k=[0]", "sweep.k"),
    ("zipf.classes=[1]", "zipf.classes"),
    ("train.batch_size=100000", "train.batch_size"),
])
def test_impossible_values_name_their_field(override, field):
    with pytest.raises(ConfigError, match=field.split(".")[0]) as err:
        chapters.load_config(NAME, "quick", [override])
    assert field.split(".")[-1] in str(err.value)


def test_the_finite_enumeration_budget_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="finite.k"):
        chapters.load_config(NAME, "quick", ["finite.k=[1, 512]"])
