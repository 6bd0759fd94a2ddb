"""Chained-equations imputation of the jury tables with a Bayesian ridge regression.

The original study's imputed welfare variant (notebook ``11c``) completed each
participant x LLM table with scikit-learn's ``IterativeImputer(BayesianRidge())``;
:func:`iterative_impute` re-implements it (:func:`bayesian_ridge` is the regression),
and the completed tables are clipped to :data:`IMPUTE_BOUNDS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

#: Clipping range of the imputed tables (the original's ``round_rating``/``round_choice``).
IMPUTE_BOUNDS: dict[str, tuple[float, float]] = {
    "mean": (1.0, 100.0),
    "chosen": (0.0, 1.0),
    "veto": (0.0, 1.0),
}


# --- imputation ---------------------------------------------------------------------------


def bayesian_ridge(
    X: np.ndarray,
    y: np.ndarray,
    *,
    max_iter: int = 300,
    tol: float = 1e-3,
    alpha_1: float = 1e-6,
    alpha_2: float = 1e-6,
    lambda_1: float = 1e-6,
    lambda_2: float = 1e-6,
) -> tuple[np.ndarray, float]:
    """Bayesian ridge regression by evidence maximisation (MacKay 1992).

    The model ``y = X b + c + e``, ``e ~ N(0, 1/alpha)``, ``b ~ N(0, 1/lambda)``, with
    Gamma(1e-6, 1e-6) hyperpriors on both precisions; alpha and lambda are updated by
    the fixed-point equations until the coefficients change by less than *tol* (L1),
    starting from ``alpha = 1/var(y)`` and ``lambda = 1``.  This follows the
    algorithm and defaults of scikit-learn's ``BayesianRidge`` (the estimator the
    original study's imputer used), with an intercept from centring.

    Returns
    -------
    coef, intercept
        The posterior mean of the coefficients and the intercept.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_offset = X.mean(axis=0)
    y_offset = float(y.mean())
    Xc = X - x_offset
    yc = y - y_offset
    n, p = Xc.shape
    alpha = 1.0 / (np.var(yc) + np.finfo(np.float64).eps)
    lam = 1.0
    xty = Xc.T @ yc
    U, S, Vh = scipy.linalg.svd(Xc, full_matrices=False)
    eig = S**2

    def posterior_mean(alpha: float, lam: float) -> tuple[np.ndarray, float]:
        if n > p:
            coef = np.linalg.multi_dot([Vh.T, Vh / (eig + lam / alpha)[:, None], xty])
        else:
            coef = np.linalg.multi_dot([Xc.T, U / (eig + lam / alpha)[None, :], U.T, yc])
        return coef, float(np.sum((yc - Xc @ coef) ** 2))

    coef_old = None
    for it in range(max_iter):
        coef, sse = posterior_mean(alpha, lam)
        gamma = float(np.sum((alpha * eig) / (lam + alpha * eig)))
        lam = (gamma + 2 * lambda_1) / (float(np.sum(coef**2)) + 2 * lambda_2)
        alpha = (n - gamma + 2 * alpha_1) / (sse + 2 * alpha_2)
        if it != 0 and coef_old is not None and np.sum(np.abs(coef_old - coef)) < tol:
            break
        coef_old = coef.copy()
    coef, _ = posterior_mean(alpha, lam)
    return coef, y_offset - float(x_offset @ coef)


def iterative_impute(
    X: np.ndarray,
    *,
    max_iter: int = 10,
    tol: float = 1e-3,
    regressor: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] = bayesian_ridge,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Chained-equations (MICE-style) imputation of a matrix, deterministic.

    Re-implements the procedure of scikit-learn's ``IterativeImputer`` with its
    defaults, which the original study used (11c, ``IterativeImputer(random_state=1)``;
    with these defaults the random state plays no role):

    1. fill each column's missing cells with the column's observed mean;
    2. visit the columns in ascending order of their share of missing cells (stable
       order for ties); regress each column's observed cells on all other columns'
       current values with :func:`bayesian_ridge` and replace its missing cells by
       the posterior-mean predictions;
    3. repeat step 2 up to *max_iter* rounds, stopping early when the largest absolute
       row sum of the change over a round falls below ``tol * max|observed|``.

    Observed cells are never changed; all-missing columns are left missing.  The
    result matches scikit-learn's up to floating-point rounding but bit-for-bit
    equality is not promised (different BLAS/LAPACK paths and library versions).

    Returns
    -------
    filled, info
        The completed matrix and ``{"n_iter", "converged", "n_missing"}``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {X.shape}")
    out = X.copy()
    missing = np.isnan(X)
    valid = ~missing.all(axis=0)
    info: dict[str, Any] = {
        "n_iter": 0,
        "converged": True,
        "n_missing": int(missing[:, valid].sum()),
    }
    Xv = X[:, valid]
    mask = missing[:, valid]
    if not mask.any():
        return out, info
    col_means = np.array([Xv[~mask[:, j], j].mean() for j in range(Xv.shape[1])])
    Xt = np.where(mask, col_means[None, :], Xv)
    if Xt.shape[1] == 1 or max_iter == 0:
        out[:, valid] = Xt
        info["converged"] = max_iter > 0
        return out, info
    order = np.argsort(mask.mean(axis=0), kind="mergesort")
    threshold = tol * np.max(np.abs(Xv[~mask]))
    previous = Xt.copy()
    converged = False
    n_cols = Xt.shape[1]
    for it in range(1, max_iter + 1):
        info["n_iter"] = it
        for j in order:
            rows = mask[:, j]
            if not rows.any():
                continue  # a complete column: its fit would not change anything
            others = np.r_[0:j, j + 1 : n_cols]
            coef, intercept = regressor(Xt[~rows][:, others], Xt[~rows, j])
            Xt[rows, j] = Xt[rows][:, others] @ coef + intercept
        change = np.linalg.norm(Xt - previous, ord=np.inf)
        if change < threshold:
            converged = True
            break
        previous = Xt.copy()
    info["converged"] = converged
    if not converged:
        warnings.warn(
            f"iterative imputation did not converge in {max_iter} rounds (as scikit-learn, "
            "the last round's values are used)",
            RuntimeWarning,
            stacklevel=2,
        )
    out[:, valid] = Xt
    return out, info
