"""The model stage: specs, designs, the PyMC rating model, fitting, diagnostics, run folders.

See ARCHITECTURE.md.

Modules: :mod:`.spec` (model specs from ``models/*.toml``), :mod:`.design` (ratings
collapsed onto observation cells), :mod:`.rating` (the PyMC rating model), :mod:`.fit`
(sampling and run folders), :mod:`.runtree` (the run's ArviZ DataTree),
:mod:`.convergence` (diagnostics and the strict gate), :mod:`.diagnostics` (predictive
checks, LOO, LOO-PIT), :mod:`.choice` (the choice model),
:mod:`.crosscheck` (MixedLM cross-check) and :mod:`.plots`.
"""

from __future__ import annotations

from .convergence import Diagnostics, diagnose
from .design import Design, DesignError, build_design
from .diagnostics import compare, loo, loo_pit, predictive_checks, prior_predictive
from .fit import Run, RunError, fit
from .predict import linear_predictor, participant_loglik
from .rating import build_model
from .runtree import prior_samples
from .spec import ModelSpec, SpecError, available_specs, load_spec

__all__ = [
    "Design",
    "DesignError",
    "Diagnostics",
    "ModelSpec",
    "Run",
    "RunError",
    "SpecError",
    "available_specs",
    "build_design",
    "build_model",
    "compare",
    "diagnose",
    "fit",
    "linear_predictor",
    "load_spec",
    "loo",
    "loo_pit",
    "participant_loglik",
    "predictive_checks",
    "prior_predictive",
    "prior_samples",
]
