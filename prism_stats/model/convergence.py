"""Convergence diagnostics of a posterior and the strict gate (R-hat, ESS, divergences, BFMI).

:func:`diagnose` computes R-hat (rank-normalised), bulk and tail ESS for every
parameter, divergences and E-BFMI per chain, and the verdict of the strict gate
(R-hat <= 1.01, ESS >= 400, no divergence by default) as :class:`Diagnostics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:  # annotation only: fit imports this module (Run.save writes the diagnostics)
    from .fit import Run


RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass
class Diagnostics:
    """Convergence summary of a run.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per posterior variable: ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``
        (worst element of the variable) and ``size``.
    divergences : int
    bfmi : list of float
        E-BFMI per chain (values below 0.3 suggest poor exploration).
    n_chains, n_draws : int
    rhat_max, ess_min : float
        Thresholds of the strict gate.
    """

    table: pd.DataFrame
    divergences: int
    bfmi: list[float]
    n_chains: int
    n_draws: int
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def max_rhat(self) -> float:
        return float(self.table["max_rhat"].max())

    @property
    def min_ess_bulk(self) -> float:
        return float(self.table["min_ess_bulk"].min())

    @property
    def min_ess_tail(self) -> float:
        return float(self.table["min_ess_tail"].min())

    def failures(self) -> list[str]:
        """Reasons the strict gate fails (empty when it passes)."""
        out = []
        if not self.max_rhat <= self.rhat_max:
            worst = self.table["max_rhat"].idxmax()
            out.append(f"R-hat {self.max_rhat:.3f} > {self.rhat_max} (worst: {worst})")
        for kind in ("bulk", "tail"):
            value = float(self.table[f"min_ess_{kind}"].min())
            if not value >= self.ess_min:
                worst = self.table[f"min_ess_{kind}"].idxmin()
                out.append(f"ESS {kind} {value:.0f} < {self.ess_min:.0f} (worst: {worst})")
        if self.divergences:
            out.append(f"{self.divergences} divergent transition(s)")
        return out

    @property
    def passed(self) -> bool:
        """Whether the strict gate passes."""
        return not self.failures()

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": self.divergences,
            "bfmi": self.bfmi,
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "thresholds": {"rhat_max": self.rhat_max, "ess_min": self.ess_min},
            "passed": self.passed,
            "failures": self.failures(),
            "per_variable": self.table.reset_index(names="variable").to_dict(orient="records"),
            **self.extra,
        }

    def __str__(self) -> str:
        lines = [
            f"chains x draws     {self.n_chains} x {self.n_draws}",
            f"max R-hat          {self.max_rhat:.4f}   (gate <= {self.rhat_max})",
            f"min ESS bulk       {self.min_ess_bulk:.0f}   (gate >= {self.ess_min:.0f})",
            f"min ESS tail       {self.min_ess_tail:.0f}",
            f"divergences        {self.divergences}",
            f"E-BFMI per chain   {', '.join(f'{b:.2f}' for b in self.bfmi)}",
            "verdict            " + ("PASS" if self.passed else "FAIL: " + "; ".join(self.failures())),
        ]
        return "\n".join(lines)


def diagnose(run: Run | xr.DataTree, *, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN) -> Diagnostics:
    """Compute the convergence diagnostics of a run (or of a DataTree with a posterior)."""
    idata = run if isinstance(run, xr.DataTree) else run.idata
    post = idata["posterior"].to_dataset()
    rhat = az.rhat(post)
    bulk = az.ess(post, method="bulk")
    tail = az.ess(post, method="tail")
    rows = {}
    for name in post.data_vars:
        rows[name] = {
            "max_rhat": float(np.nanmax(rhat[name].values)) if rhat[name].size else np.nan,
            "min_ess_bulk": float(np.nanmin(bulk[name].values)),
            "min_ess_tail": float(np.nanmin(tail[name].values)),
            "size": int(np.prod([post[name].sizes[d] for d in post[name].dims
                                 if d not in ("chain", "draw")])),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    stats = idata["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi: list[float] = []
    if "energy" in stats:
        energy = stats["energy"].transpose("chain", "draw").values
        bfmi = [float(np.mean(np.diff(e) ** 2) / np.var(e)) for e in energy]
    return Diagnostics(
        table=table,
        divergences=divergences,
        bfmi=bfmi,
        n_chains=int(post.sizes["chain"]),
        n_draws=int(post.sizes["draw"]),
        rhat_max=rhat_max,
        ess_min=ess_min,
    )
