"""Convergence diagnostics of a posterior and the strict gate (R-hat, ESS, divergences, E-BFMI, tree depth).

:func:`diagnose` computes, with arviz-stats, the rank-normalised split R-hat and the bulk
and tail ESS of every parameter element, and E-BFMI per chain; from the sampler's
statistics it counts divergences and draws whose trajectory hit the maximum tree depth.
The strict gate (:class:`Diagnostics`) fails on R-hat > 1.01, ESS < 400, any divergence,
E-BFMI < 0.3 in any chain, or more than 1% of draws at the maximum tree depth. R-hat
needs at least two chains: with one chain it is not computed and the gate says that it
cannot judge convergence (it fails, with that reason, instead of passing by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:  # annotation only: fit imports this module (Run.save writes the diagnostics)
    from .fit import Run


RHAT_MAX = 1.01
ESS_MIN = 400
#: E-BFMI below this in any chain suggests the sampler explores the energy poorly.
BFMI_MIN = 0.3
#: Share of draws allowed at the maximum tree depth (saturation makes NUTS a random walk
#: and is the usual sign of a badly scaled posterior; Stan reports any, we tolerate 1%).
TREEDEPTH_MAX_SHARE = 0.01
#: Names of the tree-depth saturation flag in the samplers' statistics (nutpie, PyMC).
_TREEDEPTH_FLAGS = ("maxdepth_reached", "reached_max_treedepth")


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass
class Diagnostics:
    """Convergence summary of a run.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per posterior variable: ``max_rhat`` (NaN with one chain),
        ``min_ess_bulk``, ``min_ess_tail`` (worst element of the variable) and ``size``.
    divergences : int
    bfmi : list of float
        E-BFMI per chain (values below 0.3 suggest poor exploration).
    n_chains, n_draws : int
    treedepth_saturated : int
        Draws whose trajectory reached the sampler's maximum tree depth (``None`` when
        the sampler does not report it).
    rhat_max, ess_min, bfmi_min, treedepth_max_share : float
        Thresholds of the strict gate.
    """

    table: pd.DataFrame
    divergences: int
    bfmi: list[float]
    n_chains: int
    n_draws: int
    treedepth_saturated: int | None = None
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    bfmi_min: float = BFMI_MIN
    treedepth_max_share: float = TREEDEPTH_MAX_SHARE
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rhat_available(self) -> bool:
        """R-hat needs at least two chains."""
        return self.n_chains >= 2 and bool(self.table["max_rhat"].notna().any())

    @property
    def max_rhat(self) -> float:
        """The worst R-hat (NaN when it cannot be computed)."""
        return float(self.table["max_rhat"].max()) if self.rhat_available else math.nan

    @property
    def min_ess_bulk(self) -> float:
        return float(self.table["min_ess_bulk"].min())

    @property
    def min_ess_tail(self) -> float:
        return float(self.table["min_ess_tail"].min())

    @property
    def treedepth_share(self) -> float | None:
        """Share of draws at the maximum tree depth (``None`` when not reported)."""
        if self.treedepth_saturated is None:
            return None
        return self.treedepth_saturated / max(self.n_chains * self.n_draws, 1)

    def failures(self) -> list[str]:
        """Reasons the strict gate fails (empty when it passes)."""
        out = []
        if not self.rhat_available:
            out.append(f"R-hat needs at least 2 chains ({self.n_chains} sampled): "
                       "convergence cannot be judged")
        elif not self.max_rhat <= self.rhat_max:
            worst = self.table["max_rhat"].idxmax()
            out.append(f"R-hat {self.max_rhat:.3f} > {self.rhat_max} (worst: {worst})")
        for kind in ("bulk", "tail"):
            column = self.table[f"min_ess_{kind}"]
            value = float(column.min())
            if not value >= self.ess_min:
                worst = column.idxmin() if column.notna().any() else "all"
                out.append(f"ESS {kind} {value:.0f} < {self.ess_min:.0f} (worst: {worst})")
        if self.divergences:
            out.append(f"{self.divergences} divergent transition(s)")
        low = [f"chain {i}: {b:.2f}" for i, b in enumerate(self.bfmi) if not b >= self.bfmi_min]
        if low:
            out.append(f"E-BFMI < {self.bfmi_min} ({', '.join(low)})")
        share = self.treedepth_share
        if share is not None and share > self.treedepth_max_share:
            out.append(f"{self.treedepth_saturated} draw(s) ({share:.1%}) at the maximum tree depth "
                       f"(> {self.treedepth_max_share:.0%})")
        return out

    @property
    def passed(self) -> bool:
        """Whether the strict gate passes."""
        return not self.failures()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN written as ``null``)."""
        table = self.table.reset_index(names="variable").astype(object)
        return {
            "max_rhat": _finite_or_none(self.max_rhat),
            "min_ess_bulk": _finite_or_none(self.min_ess_bulk),
            "min_ess_tail": _finite_or_none(self.min_ess_tail),
            "divergences": self.divergences,
            "bfmi": self.bfmi,
            "treedepth_saturated": self.treedepth_saturated,
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "thresholds": {"rhat_max": self.rhat_max, "ess_min": self.ess_min,
                           "bfmi_min": self.bfmi_min, "treedepth_max_share": self.treedepth_max_share},
            "passed": self.passed,
            "failures": self.failures(),
            "per_variable": [{k: (_finite_or_none(v) if isinstance(v, float) else v) for k, v in r.items()}
                             for r in table.to_dict(orient="records")],
            **self.extra,
        }

    def __str__(self) -> str:
        rhat = f"{self.max_rhat:.4f}" if self.rhat_available else "n/a (needs 2 chains)"
        share = self.treedepth_share
        lines = [
            f"chains x draws     {self.n_chains} x {self.n_draws}",
            f"max R-hat          {rhat}   (gate <= {self.rhat_max})",
            f"min ESS bulk       {self.min_ess_bulk:.0f}   (gate >= {self.ess_min:.0f})",
            f"min ESS tail       {self.min_ess_tail:.0f}",
            f"divergences        {self.divergences}",
            f"E-BFMI per chain   {', '.join(f'{b:.2f}' for b in self.bfmi) or 'n/a'}   (gate >= {self.bfmi_min})",
            "max tree depth     " + ("n/a" if share is None else
                                     f"{self.treedepth_saturated} draw(s), {share:.1%}   "
                                     f"(gate <= {self.treedepth_max_share:.0%})"),
            "verdict            " + ("PASS" if self.passed else "FAIL: " + "; ".join(self.failures())),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Diagnostics({self.n_chains} x {self.n_draws} draws, "
                f"{'PASS' if self.passed else 'FAIL'}, {len(self.failures())} failure(s))")


def _worst(ds: xr.Dataset, name: str, reduce) -> float:
    values = np.asarray(ds[name].values, dtype=float)
    if not values.size or np.isnan(values).all():
        return math.nan
    return float(reduce(values))


def diagnose(
    run: Run | xr.DataTree,
    *,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    bfmi_min: float = BFMI_MIN,
    treedepth_max_share: float = TREEDEPTH_MAX_SHARE,
) -> Diagnostics:
    """Compute the convergence diagnostics of a run (or of a DataTree with a posterior).

    R-hat (rank-normalised, split), bulk and tail ESS and E-BFMI come from arviz-stats.
    """
    idata = run if isinstance(run, xr.DataTree) else run.idata
    post = idata["posterior"].to_dataset()
    n_chains = int(post.sizes["chain"])
    # arviz-stats returns NaN R-hat for one chain; skip the work and say so in the gate
    rhat = azs.rhat(post) if n_chains >= 2 else None
    bulk = azs.ess(post, method="bulk")
    tail = azs.ess(post, method="tail")
    rows = {}
    for name in post.data_vars:
        rows[name] = {
            "max_rhat": _worst(rhat, name, np.nanmax) if rhat is not None else math.nan,
            "min_ess_bulk": _worst(bulk, name, np.nanmin),
            "min_ess_tail": _worst(tail, name, np.nanmin),
            "size": int(np.prod([post[name].sizes[d] for d in post[name].dims
                                 if d not in ("chain", "draw")])),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else xr.Dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi: list[float] = []
    if "energy" in stats:
        values = azs.bfmi(idata)["energy"].values
        bfmi = [float(b) for b in np.atleast_1d(values)]
    flag = next((f for f in _TREEDEPTH_FLAGS if f in stats), None)
    saturated = int(stats[flag].sum()) if flag else None
    return Diagnostics(
        table=table,
        divergences=divergences,
        bfmi=bfmi,
        n_chains=n_chains,
        n_draws=int(post.sizes["draw"]),
        treedepth_saturated=saturated,
        rhat_max=rhat_max,
        ess_min=ess_min,
        bfmi_min=bfmi_min,
        treedepth_max_share=treedepth_max_share,
    )
