import numpy as np
import pandas as pd
import pytest
from conftest import environment
from scipy.stats import ks_2samp
from synthchain.generators import GeneratorError, build_generator, effective_params
from synthchain.seeds import derive_seed
from synthchain.specs import GeneratorSpec
from synthchain.tabular.cart import CartGenerator
from synthchain.tabular.copula import GaussianCopulaGenerator
from synthchain.tabular.generators import BUILTIN
from synthchain.tabular.profile import profile_frame


def mixed_frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.8 * x + 0.6 * rng.normal(size=n)
    frame = pd.DataFrame({
        "x": x,
        "y": np.exp(y),  # skewed and correlated with x
        "count": rng.poisson(2, n),
        "group": np.where(x > 0, "high", "low"),
        "rare": rng.choice(["a", "b", "c"], n, p=[0.9, 0.08, 0.02]),
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "maybe": np.where(rng.random(n) < 0.2, np.nan, rng.normal(10, 2, n)),
    })
    return frame


@pytest.mark.parametrize("cls", [GaussianCopulaGenerator, CartGenerator])
def test_marginals_correlations_missing(cls):
    real = mixed_frame()
    profile = profile_frame(real, "group", "classification")
    synth = cls().fit(real, profile).sample(3000, seed=1)
    assert list(synth.columns) == list(real.columns)
    for col in ("x", "y", "count", "maybe"):
        assert ks_2samp(real[col].dropna(), synth[col].dropna()).statistic < 0.06, col
    assert abs(real[["x", "y"]].corr(method="spearman").iloc[0, 1]
               - synth[["x", "y"]].corr(method="spearman").iloc[0, 1]) < 0.06
    freq_real = real["rare"].value_counts(normalize=True)
    freq_syn = synth["rare"].value_counts(normalize=True)
    assert set(freq_syn.index) == {"a", "b", "c"}
    assert (freq_real - freq_syn).abs().max() < 0.03
    assert abs(synth["maybe"].isna().mean() - 0.2) < 0.04
    assert synth["count"].dtype == real["count"].dtype
    assert pd.api.types.is_datetime64_any_dtype(synth["when"])
    assert synth["when"].min() >= real["when"].min() and synth["when"].max() <= real["when"].max()
    # the category follows x (real gap 1.6; a Gaussian copula attenuates category links to about 1.0)
    assert synth.loc[synth["group"] == "high", "x"].mean() > synth.loc[synth["group"] == "low", "x"].mean() + 0.8


@pytest.mark.parametrize("cls", [GaussianCopulaGenerator, CartGenerator])
def test_same_seed_same_rows(cls):
    real = mixed_frame(800)
    profile = profile_frame(real, "group", "classification")
    gen = cls().fit(real, profile)
    pd.testing.assert_frame_equal(gen.sample(300, seed=5), gen.sample(300, seed=5))
    assert not gen.sample(300, seed=5).equals(gen.sample(300, seed=6))
    refit = cls().fit(real, profile)
    pd.testing.assert_frame_equal(gen.sample(300, seed=5), refit.sample(300, seed=5))


def test_sample_before_fit_is_an_error():
    with pytest.raises(GeneratorError, match="must be fitted"):
        GaussianCopulaGenerator().sample(10, seed=0)


def test_seed_derivation_is_stable_and_distinct():
    a = derive_seed("lc", "2026-01-01", "cart@1.0", 0, 0)
    assert a == derive_seed("lc", "2026-01-01", "cart@1.0", 0, 0)
    assert a != derive_seed("lc", "2026-01-01", "cart@1.0", 1, 0)
    assert a != derive_seed("lc", "2026-01-02", "cart@1.0", 0, 0)
    assert 0 <= a < 2**63


def test_registry_versions_params_and_import_paths():
    assert effective_params(GeneratorSpec(name="cart", version="1.1"), BUILTIN)["smoothing"] is True
    assert effective_params(GeneratorSpec(name="cart", version="1.0", params={"min_samples_leaf": 9}), BUILTIN)[
        "min_samples_leaf"] == 9
    with pytest.raises(GeneratorError, match="no version '9.9'; known versions: \\['1.0', '1.1'\\]"):
        build_generator(GeneratorSpec(name="cart", version="9.9"), BUILTIN)
    with pytest.raises(GeneratorError, match="unknown generator 'nope'"):
        build_generator(GeneratorSpec(name="nope", version="1"), BUILTIN)
    with pytest.raises(GeneratorError, match="'no_such_module:Gen' is not registered, so it is not imported"):
        build_generator(GeneratorSpec(name="no_such_module:Gen", version="1"), BUILTIN)
    allowed = "synthchain.tabular.copula:GaussianCopulaGenerator"
    with environment(SYNTHCHAIN_ALLOWED_GENERATORS=f"x:Y, {allowed}"):  # the allow-list of import paths
        third_party = build_generator(GeneratorSpec(name=allowed, version="custom-7", params={"marginal_knots": 32}),
                                      BUILTIN)
    assert third_party.marginal_knots == 32
    with pytest.raises(GeneratorError, match="refused its params"):
        build_generator(GeneratorSpec(name="cart", version="1.0", params={"bogus": 1}), BUILTIN)


def test_cart_smoothing_stays_in_range_and_leaves_spikes_alone(split):
    train, _, profile = split
    synth = CartGenerator(smoothing=True).fit(train, profile).sample(2000, seed=0)
    for col in ("delinq_amnt", "annual_inc", "int_rate"):
        assert synth[col].min() >= train[col].min() and synth[col].max() <= train[col].max(), col
    assert set(synth["delinq_amnt"].unique()) <= set(train["delinq_amnt"].unique())  # a spike column: not smoothed
    assert synth["annual_inc"].nunique() > train["annual_inc"].nunique()  # continuous: smoothed


@pytest.mark.parametrize("k", [1, 2, 7, 150, 518])
def test_step_lookup_equals_binary_search(k):
    from synthchain.tabular.copula import _StepLookup

    rng = np.random.default_rng(k)
    upper = np.cumsum(rng.random(k))
    upper /= upper[-1]
    lookup = _StepLookup(upper)
    z = np.r_[rng.standard_normal(200_000).astype(np.float32), lookup.thresholds[:-1].astype(np.float32),
              np.float32([-50, 50, 7.999, -7.999])]
    expected = np.minimum(np.searchsorted(lookup.thresholds, z.astype(np.float64), side="right"), k - 1)
    np.testing.assert_array_equal(lookup(z), expected)


def test_cart_many_level_column_keeps_rare_values_and_its_link():
    """A kept free-text column (thousands of levels) trains a tree on its frequent levels only, yet every
    synthetic value is a real one and the column still follows the columns before it."""
    from synthchain.tabular import cart

    rng = np.random.default_rng(3)
    n = 4000
    x = rng.normal(size=n)
    # 1,500 rare titles on one side of x, three common ones on the other
    title = np.where(x > 0, rng.choice(["nurse", "teacher", "driver"], n),
                     np.char.add("title_", rng.integers(0, 1500, n).astype(str)))
    real = pd.DataFrame({"x": x, "title": title})
    assert real["title"].nunique() > cart.MAX_TREE_CLASSES * 10
    profile = profile_frame(real, "x", "regression")
    synth = CartGenerator().fit(real, profile).sample(3000, seed=2)
    assert set(synth["title"]) <= set(real["title"])
    rare = synth["title"].str.startswith("title_")
    assert synth["title"][rare].nunique() > 300  # rare levels come through the leaves' donors
    assert synth.loc[rare, "x"].mean() < -0.5 < 0.5 < synth.loc[~rare, "x"].mean()
