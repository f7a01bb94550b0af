"""Sampling inside a slice: CART and the copula condition on it, any other generator is rejection-sampled, and
every row is checked. Lending Club's bad loans (5.2% of the rows) are the rare slice."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from synthchain.generators import GeneratorError, sample_generator, sample_in_slice
from synthchain.specs import GeneratorSpec
from synthchain.targets import Condition, Slice
from synthchain.tabular.cart import CartGenerator
from synthchain.tabular.copula import GaussianCopulaGenerator
from synthchain.tabular.profile import profile_frame
from test_generation import mixed_frame

BAD = (Condition("Class", "==", "bad"),)
SPEC = GeneratorSpec(name="under_test", version="1.0")


class Resample:
    """A third-party generator (plain class, no `can_condition`): real rows drawn with replacement."""

    def fit(self, data, profile=None):
        self.rows_ = data.reset_index(drop=True)
        return self

    def sample(self, n, seed):
        return self.rows_.sample(n, replace=True, random_state=seed % 2**32).reset_index(drop=True)


class Unaimed(Resample):
    """Claims it can condition but ignores the conditions: its rows must still be checked."""

    can_condition = True

    def sample(self, n, seed, conditions=()):
        return super().sample(n, seed)


class Broken(Resample):
    def sample(self, n, seed):
        raise RuntimeError("model file went missing")


@pytest.fixture(scope="module")
def train(split):
    return split[0]


@pytest.fixture(scope="module")
def models(split):
    train, _, profile = split
    class_first = ["Class"] + [c for c in train.columns if c != "Class"]
    return {"cart": CartGenerator().fit(train, profile),
            "cart_class_first": CartGenerator(visit_sequence=class_first).fit(train, profile),
            "cart_smoothed": CartGenerator(min_samples_leaf=10, max_depth=20, smoothing=True).fit(train, profile),
            "copula": GaussianCopulaGenerator().fit(train, profile)}


def in_slice(frame, conditions):
    return Slice("test", tuple(conditions)).mask(frame)


def tv(a: pd.Series, b: pd.Series) -> float:
    return 0.5 * a.value_counts(normalize=True).sub(b.value_counts(normalize=True), fill_value=0).abs().sum()


@pytest.mark.parametrize("name", ["cart", "cart_smoothed", "copula"])
def test_no_conditions_is_byte_identical(models, name):
    # the published demo data comes from sample(n, seed): neither path may change it
    model = models[name]
    plain = model.sample(1500, seed=11)
    pd.testing.assert_frame_equal(model.sample(1500, seed=11, conditions=()), plain, check_exact=True)
    rows, stats = sample_in_slice(model, SPEC, 1500, 11, (), max_draws=10_000)
    pd.testing.assert_frame_equal(rows, plain, check_exact=True)
    assert stats == {"method": "conditioned", "requested": 1500, "drawn": 1500, "accepted": 1500,
                     "acceptance_rate": 1.0}


def test_cart_conditioned_on_the_minority_class(models, train):
    real = train[in_slice(train, BAD)]
    rows, stats = sample_in_slice(models["cart_class_first"], SPEC, 2000, 3, BAD, max_draws=100_000)
    assert len(rows) == 2000 and in_slice(rows, BAD).all()
    assert stats["method"] == "conditioned" and stats["acceptance_rate"] == 1.0  # visited first: no row is lost
    plain = models["cart_class_first"].sample(2000, seed=3)
    # bad loans carry higher rates and worse grades; the conditioned rows have them, the unconditioned do not
    assert ks_2samp(rows["int_rate"], real["int_rate"]).statistic < 0.04
    assert ks_2samp(plain["int_rate"], real["int_rate"]).statistic > 0.3
    assert tv(rows["sub_grade"], real["sub_grade"]) < 0.08 < 0.3 < tv(plain["sub_grade"], real["sub_grade"])
    assert abs(rows["int_rate"].mean() - real["int_rate"].mean()) < 0.3


def test_cart_conditioned_on_its_last_column_drops_rows_without_donors(models, train):
    # Class is visited last: rows whose leaf holds no bad loan are dropped, still ~3x fewer draws than rejection
    rows, stats = sample_in_slice(models["cart"], SPEC, 1000, 3, BAD, max_draws=100_000)
    assert len(rows) == 1000 and in_slice(rows, BAD).all()
    assert 0.12 < stats["acceptance_rate"] < 0.2
    assert ks_2samp(rows["int_rate"], train.loc[in_slice(train, BAD), "int_rate"]).statistic < 0.1


def test_cart_smoothing_never_leaves_a_between_range(models, train):
    model = models["cart_smoothed"]
    assert next(s for s in model.steps_ if s.name == "annual_inc").bandwidth > 0  # the column is smoothed
    condition = Condition("annual_inc", "between", (50_000, 60_000))
    rows = model.sample(3000, seed=4, conditions=(condition,))  # the generator's own rows, unchecked
    assert len(rows) > 2000
    assert rows["annual_inc"].between(50_000, 60_000).all()
    # still smoothed inside the range: values are not copies, and not piled on the bounds as clipping would
    assert (~rows["annual_inc"].isin(train["annual_inc"])).mean() > 0.95
    assert rows["annual_inc"].isin([50_000, 60_000]).mean() < 0.01


def test_cart_conditions_are_deterministic(models):
    conditions = BAD + (Condition("funded_amnt", "<=", 5000),)
    a, stats_a = sample_in_slice(models["cart"], SPEC, 300, 8, conditions, max_draws=50_000)
    b, stats_b = sample_in_slice(models["cart"], SPEC, 300, 8, conditions, max_draws=50_000)
    pd.testing.assert_frame_equal(a, b)
    assert stats_a == stats_b and len(a) == 300 and in_slice(a, conditions).all()


def test_copula_conditioned_on_a_numeric_range_is_exact(models, train):
    condition = (Condition("annual_inc", ">=", 150_000),)  # 7.3% of the loans
    model = models["copula"]
    assert len(model.sample(2000, seed=4, conditions=condition)) == 2000  # nothing left to rejection
    rows, stats = sample_in_slice(model, SPEC, 2000, 4, condition, max_draws=100_000)
    assert in_slice(rows, condition).all() and stats["acceptance_rate"] == 1.0
    # income and loan size are correlated: the conditioned loans are larger, as the real slice's are
    real = train.loc[in_slice(train, condition), "funded_amnt"].mean()  # 23,958 vs 15,726 over all loans
    assert rows["funded_amnt"].mean() > model.sample(2000, seed=4)["funded_amnt"].mean() + 6000
    assert abs(rows["funded_amnt"].mean() - real) < 0.1 * real


@pytest.mark.parametrize("condition", [
    Condition("x", "between", (1.0, 2.0)),  # interpolated marginal
    Condition("y", "<", 0.2),
    Condition("count", "in", (0, 5)),  # discrete values: steps of the latent coordinate
    Condition("rare", "in", ("b", "c")),  # categories: frequency intervals
    Condition("when", ">=", pd.Timestamp("2024-12-01")),
], ids=lambda c: c.words())
def test_copula_draws_each_expressible_condition_exactly(condition):
    real = mixed_frame(1500)
    model = GaussianCopulaGenerator().fit(real, profile_frame(real, "group", "classification"))
    rows = model.sample(1000, seed=2, conditions=(condition,))
    assert len(rows) == 1000 and in_slice(rows, (condition,)).all()


def test_copula_conditional_mean_follows_the_correlation():
    real = mixed_frame()
    model = GaussianCopulaGenerator().fit(real, profile_frame(real, "group", "classification"))
    condition = (Condition("x", "between", (1.0, 2.0)),)
    rows = model.sample(2000, seed=4, conditions=condition)
    real_mean = real.loc[in_slice(real, condition), "y"].mean()  # 3.9 against 1.7 over all rows
    assert abs(rows["y"].mean() - real_mean) < 0.3
    assert rows["y"].mean() > model.sample(2000, seed=4)["y"].mean() + 1.5


def test_copula_second_condition_by_rejection(models):
    conditions = BAD + (Condition("int_rate", ">", 20),)  # the rarer one exactly, the other by rejection
    rows = models["copula"].sample(1000, seed=1, conditions=conditions)
    assert 0 < len(rows) < 1000 and in_slice(rows, conditions).all()


def test_rejection_for_a_generator_that_cannot_condition(train):
    model = Resample().fit(train)
    rows, stats = sample_in_slice(model, SPEC, 1000, 5, BAD, max_draws=200_000)
    assert stats["method"] == "rejection" and len(rows) == 1000 and in_slice(rows, BAD).all()
    assert stats["acceptance_rate"] == pytest.approx(in_slice(train, BAD).mean(), abs=0.005)
    assert stats["accepted"] == round(stats["acceptance_rate"] * stats["drawn"])
    again, _ = sample_in_slice(model, SPEC, 1000, 5, BAD, max_draws=200_000)
    pd.testing.assert_frame_equal(rows, again)


def test_rejection_stops_at_max_draws(train):
    model = Resample().fit(train)
    rows, stats = sample_in_slice(model, SPEC, 1000, 5, BAD, max_draws=4000)
    assert stats["drawn"] == 4000 and len(rows) == stats["accepted"] < 1000
    nothing, stats = sample_in_slice(model, SPEC, 100, 5, (Condition("Class", "==", "unknown"),), max_draws=30_000)
    assert len(nothing) == 0 and stats["drawn"] == 30_000 and stats["acceptance_rate"] == 0.0


def test_impossible_slice_for_conditioned_models(models):
    impossible = (Condition("int_rate", ">", 99.0),)
    for name in ("cart", "copula"):
        rows, stats = sample_in_slice(models[name], SPEC, 100, 5, impossible, max_draws=20_000)
        assert len(rows) == 0 and stats["drawn"] == 20_000 and stats["method"] == "conditioned"


def test_a_conditioning_promise_is_verified(train):
    rows, stats = sample_in_slice(Unaimed().fit(train), SPEC, 500, 5, BAD, max_draws=100_000)
    assert stats["method"] == "conditioned" and len(rows) == 500 and in_slice(rows, BAD).all()
    assert stats["acceptance_rate"] < 0.1


def test_model_errors_name_the_generator(train):
    with pytest.raises(GeneratorError, match=r"under_test@1.0 \(under_test\) failed to sample.*model file went"):
        sample_in_slice(Broken().fit(train), SPEC, 10, 5, BAD, max_draws=1000)
    with pytest.raises(GeneratorError, match="not fitted on"):
        sample_generator(CartGenerator().fit(train.head(200)), SPEC, 10, 5, (Condition("nope", "==", 1),))
