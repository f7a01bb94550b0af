"""Closed forms of model collapse, checked by simulation.

Linear regression (Dohmatob et al. 2024; Gerstgrasser et al. 2024): a fixed design X (T×d, rows
N(0, I)), labels regenerated each iteration from the previous fit plus N(0, σ²) noise, refit by
least squares. Iteration 1 fits the real labels. The test error E_x[(xᵀ(ŵ_n − w*))²] with
x ~ N(0, I) is ‖ŵ_n − w*‖². Its expectation after n iterations is
  replace:     σ²·d·n / (T − d − 1)
  accumulate:  σ²·d / (T − d − 1) · Σ_{i=1..n} 1/i²     (≤ π²/6 times the first iteration's)

Gaussian refits (Shumailov et al. 2024): M samples per generation, refit mean and unbiased
variance, sample again. A generation-n sample has variance σ²(1 + n/M), while the fitted
variance is a product of independent χ²_{M−1}/(M−1) factors: E[log σ̂²_n] = log σ² +
n·(ψ((M−1)/2) + log(2/(M−1))) < log σ², so it goes to 0 almost surely.

Simulations run the procedures as stated (refits on regenerated data, accumulated data kept as
sufficient statistics of the stacked least-squares problem), vectorised over repetitions.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma


class TheoryError(ValueError):
    """Parameters outside the setting the closed forms hold for."""


def _check(**values: float) -> None:
    for name, (value, minimum) in values.items():
        if value < minimum:
            raise TheoryError(f"{name} must be >= {minimum}, got {value}")


def linreg_closed_form(d: int, T: int, sigma: float, n: int, mode: str) -> float:
    _check(d=(d, 1), n=(n, 1), sigma=(sigma, 1e-12))
    if T <= d + 1:
        raise TheoryError(f"need T > d + 1 (got T={T}, d={d})")
    first = sigma**2 * d / (T - d - 1)
    if mode == "replace":
        return first * n
    if mode == "accumulate":
        return first * sum(1.0 / i**2 for i in range(1, n + 1))
    raise ValueError(f"mode must be replace or accumulate, not {mode!r}")


def simulate_linreg(d: int, T: int, sigma: float, n: int, mode: str, reps: int = 4000, seed: int = 0,
                    batch: int = 1000) -> dict:
    """Simulate n iterations of refit-on-own-labels; return mean test error and its standard error."""
    expected = linreg_closed_form(d, T, sigma, n, mode)
    _check(reps=(reps, 2))
    rng = np.random.default_rng(seed)
    errors = []
    for start in range(0, reps, batch):
        r = min(batch, reps - start)
        X = rng.standard_normal((r, T, d))
        w_star = rng.standard_normal((r, d))
        gram = np.einsum("rti,rtj->rij", X, X)
        xty_sum = np.zeros((r, d))
        labels = np.einsum("rtd,rd->rt", X, w_star) + sigma * rng.standard_normal((r, T))  # real labels
        w = None
        for iteration in range(1, n + 1):
            if iteration > 1:  # regenerate labels from the previous fit
                labels = np.einsum("rtd,rd->rt", X, w) + sigma * rng.standard_normal((r, T))
            xty = np.einsum("rtd,rt->rd", X, labels)
            if mode == "replace":
                w = np.linalg.solve(gram, xty[..., None])[..., 0]
            else:  # least squares on every dataset so far: the design repeats, so the normal
                xty_sum += xty  # equations are (k·XᵀX) w = Σ Xᵀy_j
                w = np.linalg.solve(iteration * gram, xty_sum[..., None])[..., 0]
        errors.append(np.sum((w - w_star) ** 2, axis=1))
    errors = np.concatenate(errors)
    return _summary(float(errors.mean()), float(errors.std(ddof=1) / math.sqrt(reps)), expected,
                    {"model": "linreg", "mode": mode, "d": d, "T": T, "sigma": sigma, "n": n, "reps": reps,
                     "seed": seed, "first_iteration_closed_form": linreg_closed_form(d, T, sigma, 1, mode),
                     "accumulate_bound": sigma**2 * d / (T - d - 1) * math.pi**2 / 6})


def gaussian_closed_form(M: int, sigma: float, n: int) -> dict:
    _check(M=(M, 2), n=(n, 0), sigma=(sigma, 1e-12))
    k = M - 1
    mean_log = math.log(sigma**2) + n * float(digamma(k / 2) + math.log(2 / k))
    return {"sample_variance": sigma**2 * (1 + n / M), "mean_log_fitted_variance": mean_log}


def simulate_gaussian(M: int, sigma: float, n: int, reps: int = 20000, seed: int = 0, batch: int = 5000) -> dict:
    """Refit a Gaussian on its own samples n times; generation 0 is the real data."""
    closed = gaussian_closed_form(M, sigma, n)
    _check(reps=(reps, 2))
    rng = np.random.default_rng(seed)
    sq_dev, fitted_vars = [], []
    for start in range(0, reps, batch):
        r = min(batch, reps - start)
        samples = sigma * rng.standard_normal((r, M))  # generation 0, true mean 0
        fitted = np.full(r, sigma**2)
        for _ in range(n):
            mean = samples.mean(axis=1)
            fitted = samples.var(axis=1, ddof=1)
            samples = mean[:, None] + np.sqrt(fitted)[:, None] * rng.standard_normal((r, M))
        sq_dev.append((samples**2).mean(axis=1))  # per rep: mean squared deviation from the true mean
        fitted_vars.append(fitted)
    per_rep = np.concatenate(sq_dev)
    fitted = np.concatenate(fitted_vars)
    log_fitted = np.log(fitted)
    out = _summary(float(per_rep.mean()), float(per_rep.std(ddof=1) / math.sqrt(reps)), closed["sample_variance"],
                   {"model": "gaussian", "M": M, "sigma": sigma, "n": n, "reps": reps, "seed": seed})
    out.update({
        "mean_log_fitted_variance_simulated": float(log_fitted.mean()),
        "mean_log_fitted_variance_closed_form": closed["mean_log_fitted_variance"],
        "mean_log_fitted_variance_standard_error": float(log_fitted.std(ddof=1) / math.sqrt(reps)),
        "median_fitted_variance_simulated": float(np.median(fitted)),
        "median_fitted_variance_approx": math.exp(closed["mean_log_fitted_variance"]),
        "share_fitted_variance_below_sigma2": float(np.mean(fitted < sigma**2)),
    })
    return out


def _summary(simulated: float, standard_error: float, closed_form: float, extra: dict) -> dict:
    return {**extra, "simulated": simulated, "closed_form": closed_form,
            "relative_error": abs(simulated - closed_form) / abs(closed_form),
            "standard_error": standard_error, "z_score": (simulated - closed_form) / standard_error}
