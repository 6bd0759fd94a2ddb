"""The preference-diversity stages of the pipeline: rankings, stated, rankings_model.

All three write their results into ``OUT/run/rankings/`` (beside the run's other
analyses; layout: :mod:`prism_stats.rankings.outputs`); the supplement stage turns them
into tables and figures (:func:`prism_stats.rankings.outputs.supplement_items`), so a
change of figure settings reruns only the supplement.

``rankings``        battles, every classical ranking with its participant bootstrap for
                    the whole sample and every subgroup, score use, and the original's
                    response-feature and demographic regressions (needs the data only)
``stated``          attribute correlations with clustering and the stated-vs-revealed
                    model (``[rankings] stated_model``)
``rankings_model``  the choice model (``[rankings] choice_model``; ``rankings/choice/``)
                    and the rating model's rank distributions, post-stratified (UK/US)
                    and per sample group, with the agreement table

Settings: the ``[rankings]`` section of the configuration (``configs/run.toml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import Stage, StageContext, StageError

RANKINGS_DIR = "rankings"
#: Sampling-stack packages whose versions enter the fingerprints of the model stages.
SAMPLING_VERSIONS: tuple[str, ...] = ("pymc", "pytensor", "nutpie", "numpy", "numba")


def _folder(ctx: StageContext) -> Path:
    return ctx.run_dir / RANKINGS_DIR


def rankings_stage(ctx: StageContext) -> list[Path]:
    """The study's rankings, score use and regressions."""
    from ..comparators import ComparatorError, demographic_regression, response_feature_regression
    from ..rankings import RankingError
    from ..rankings.analysis import classical_rankings, score_use
    from ..rankings.outputs import write_classical, write_regression, write_score_use

    cfg = ctx.config.sections["rankings"]
    folder = _folder(ctx)
    try:
        result = classical_rankings(ctx.data, by=cfg["by"], min_group_size=cfg["min_group_size"],
                                    replicates=cfg["replicates"], seed=cfg["seed"])
    except RankingError as exc:
        raise StageError(f"rankings: {exc}") from None
    written = write_classical(result, folder) + write_score_use(score_use(ctx.data), folder)
    for name, make in (("response_features", lambda: response_feature_regression(ctx.data)),
                       ("demographics", lambda: demographic_regression(ctx.data))):
        try:
            written += write_regression(make(), folder, name)
        except ComparatorError as exc:  # e.g. a tiny release without every level
            ctx.reporter.note(f"{name} regression not produced: {exc}")
    s = result.summary
    top = result.overall[result.overall["ranking"] == "rc_corrected"].sort_values("rank").iloc[0]
    small = result.subgroups.too_small()
    ctx.reporter.note(f"{s['n_battles']:,} battles (tie {s['share_tie']:.1%}); top (RC corrected) "
                      f"{top['llm']}; {len(result.subgroups.sizes) - len(small)} groups ranked, "
                      f"{len(small)} too small (< {cfg['min_group_size']})")
    return written


def stated_stage(ctx: StageContext) -> list[Path]:
    """Attribute correlations and the stated-vs-revealed model."""
    from ..rankings import RankingError
    from ..rankings.analysis import stated_analysis
    from ..rankings.outputs import write_stated

    cfg = ctx.config.sections["rankings"]
    folder = _folder(ctx)
    try:
        result = stated_analysis(ctx.data, fit=cfg["stated_model"], chains=cfg["chains"], draws=cfg["draws"],
                                 tune=cfg["tune"], seed=cfg["seed"], progress=ctx.progress)
    except RankingError as exc:
        raise StageError(f"stated: {exc}") from None
    if result.fit is not None:
        d = result.fit.meta["diagnostics"]
        ctx.reporter.note(f"stated-vs-revealed model: {result.fit.meta['n_conversations']:,} conversations; "
                          f"max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}")
    return write_stated(result, folder)


def rankings_model_stage(ctx: StageContext) -> list[Path]:
    """Choice-model fit and the model-based rank distributions."""
    from ..rankings import RankingError
    from ..rankings.analysis import model_rankings
    from ..rankings.outputs import write_model

    cfg = ctx.config.sections["rankings"]
    folder = _folder(ctx)
    written: list[Path] = []
    choice_run: Any = None
    if cfg["choice_model"]:
        from ..model.choice import fit_choice

        choice_run = fit_choice(ctx.data, chains=cfg["chains"], draws=cfg["draws"], tune=cfg["tune"],
                                seed=cfg["seed"], progress=ctx.progress, out=folder / "choice")
        written += [folder / "choice" / "choice_posterior.nc", folder / "choice" / "choice_run.json"]
        from ..model.convergence import diagnose

        t, d = choice_run.meta["timings"], diagnose(choice_run.idata)
        ctx.reporter.note(f"choice model: compile {t.get('compile_s') or 0:.0f} s, sampling "
                          f"{t['sampling_s']:.0f} s; max R-hat {d.max_rhat:.3f}, min bulk ESS "
                          f"{d.min_ess_bulk:.0f} (LLM effects {d.table.loc['llm_effect', 'min_ess_bulk']:.0f})")
    try:
        result = model_rankings(ctx.data, run=ctx.run, choice_run=choice_run, by=cfg["by"],
                                countries=ctx.config.countries, min_group_size=cfg["min_group_size"],
                                seed=cfg["seed"],
                                harmonisation=ctx.config.sections["poststrat"]["harmonisation"])
    except RankingError as exc:
        raise StageError(f"rankings_model: {exc}") from None
    summ = result.agreement_summary
    if len(summ):
        ctx.reporter.note(f"study ranks inside the model's 90% rank intervals: "
                          f"{summ['share_inside'].mean():.0%} on average over {len(summ)} groups")
    return written + write_model(result, folder)


def rankings_stages(config: Any) -> list[Stage]:
    """The stage declarations (appended before the supplement by ``build_stages``)."""
    if not config.sections["rankings"]["enabled"]:
        return []
    return [
        Stage("rankings", rankings_stage, depends=("validate",), config=("rankings",),
              uses_data=True, outputs=(f"run/{RANKINGS_DIR}/rankings.csv", f"run/{RANKINGS_DIR}/group_sizes.csv"),
              description="the study's rankings for every subgroup, score use, regressions"),
        Stage("stated", stated_stage, depends=("validate",), config=("rankings",),
              uses_data=True, versions=SAMPLING_VERSIONS, outputs=(f"run/{RANKINGS_DIR}/attribute_correlations.csv",),
              description="stated vs revealed preferences"),
        Stage("rankings_model", rankings_model_stage, depends=("validate", "fit", "rankings"),
              config=("rankings", "poststrat"), uses_data=True, versions=SAMPLING_VERSIONS,
              outputs=(f"run/{RANKINGS_DIR}/model_ranks.csv", f"run/{RANKINGS_DIR}/agreement.csv"),
              description="model-based rank distributions (choice and rating models)"),
    ]
