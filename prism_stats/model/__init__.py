"""The model stage: specs, sufficient-statistics designs, PyMC rating model, fitting,
diagnostics and run folders. See ARCHITECTURE.md."""

from __future__ import annotations

from .design import Design, DesignError, build_design
from .diagnostics import (
    Diagnostics,
    compare,
    diagnose,
    loo,
    predictive_checks,
    prior_predictive,
)
from .fit import Run, RunError, fit
from .predict import linear_predictor, participant_loglik
from .rating import build_model
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
    "participant_loglik",
    "predictive_checks",
    "prior_predictive",
]
