"""The stages of the end-to-end pipeline and their declarations.

Order: (``synthesize``, demo only), ``validate``, ``fit``, ``diagnostics``, ``gate`` (the
convergence gate: stops the pipeline, exit 3, unless ``[run] allow_unconverged``),
``poststratify_<c>``, ``welfare_<c>``, ``compare_<c>`` for each configured country
``c``, ``rankings``, ``stated``, ``rankings_model`` (preference diversity,
:mod:`prism_stats.pipeline.rankings_stages`; ``[rankings] enabled``), ``topics``
(dialogue diversity, ``[topics] enabled``) and ``supplement``. Output layout (``OUT`` = the pipeline's output folder)::

    OUT/manifest.json              stage records: status, fingerprint, inputs, times, outputs
    OUT/data/                      demo only: the synthetic release (with truth/)
    OUT/validate/                  validation report, exclusions, descriptives
    OUT/run/                       the run folder (prism_stats.model.Run):
        posterior.nc run.json diagnostics.json             fit
        convergence.csv ppc.nc prior_predictive.nc loo.json crosscheck_mixedlm.csv
        gate.json                                          the gate's verdict
        poststrat_<c>.nc/.csv                              MRP
        welfare_<c>.nc/.csv welfare_gaps_<c>.csv welfare_fosd_<c>.csv
        welfare_expected_gaps_<c>.csv                      model-based welfare (full information)
        exposure_matched/welfare_<c>...                    model-based, exposure-matched juries
        juries/welfare_<c>...                              design-based juries (the original's)
        compare_<c>.csv/.tex/.md, _ranks.csv, _weights.json, _balance.csv
        rankings/                                          preference diversity (rankings.outputs)
    OUT/topics/                    dialogue diversity (prism_stats.topics.analysis)
    OUT/supplement/                tables/, figures/, index.html, index.md, manifest.json
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from .._io import atomic_path, write_json_atomic, write_text_atomic
from .context import Stage, StageContext, StageError

# The analysis layers (data, model, poststrat, welfare, comparators, report) are imported
# (and numpy/pandas) inside the functions that use them: `import prism_stats.pipeline` takes ~0.3 s
# instead of ~5 s (the model layer loads PyMC), and a fully reused pipeline never loads them.

#: Sampling-stack packages whose versions enter the fit's fingerprint.
FIT_VERSIONS: tuple[str, ...] = ("pymc", "pytensor", "nutpie", "numpy", "numba")


# --- actions ------------------------------------------------------------------------------------


def synthesize_stage(ctx: StageContext) -> list[Path]:
    """Demo: write the synthetic default release (and its truth) to ``OUT/data``."""
    from ..synth import synthesize

    demo = ctx.config.sections["demo"]
    folder = ctx.out / "data"
    result = synthesize(folder, demo["participants"], demo["seed"])
    c = result.counts
    ctx.reporter.note(f"{c['participants']:,} participants, {c['conversations']:,} conversations, "
                      f"{c['utterances']:,} rated responses (seed {demo['seed']})")
    return [Path(p) for p in result.paths.values()]


def validate_stage(ctx: StageContext) -> list[Path]:
    """Load and validate the release; write the report, the exclusions and descriptives."""
    from ..data import PrismValidationError, compare_to_published, describe, load_prism

    folder = ctx.validate_dir
    strict = ctx.config.sections["data"]["strict"]
    try:
        data = load_prism(ctx.data_folder, strict=strict)
    except PrismValidationError as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            write_json_atomic(folder / "validation.json", report.to_dict())
        raise StageError(f"{exc}\n(full report: {folder / 'validation.json'}; set [data] strict = "
                         "false to exclude invalid rows instead)") from None
    if data.data_hash != ctx.data_hash:
        raise StageError(f"the release in {ctx.data_folder} changed while it was read "
                         f"(hash {ctx.data_hash[:12]} before, {data.data_hash[:12]} after)")
    ctx.put("data", data)
    written = []
    report = getattr(data, "report", None)
    if report is not None:
        written.append(write_json_atomic(folder / "validation.json", report.to_dict()))
    written.append(write_json_atomic(folder / "exclusions.json", data.exclusions.to_dict()))
    summary = describe(data)
    written.append(write_text_atomic(folder / "descriptives.csv", summary.to_frame().to_csv(index=False)))
    written.append(write_json_atomic(folder / "descriptives.json", summary.to_dict()))
    written.append(write_text_atomic(folder / "published_comparison.csv",
                                     compare_to_published(summary).to_csv(index=False)))
    n_excl = data.exclusions.total()
    ctx.reporter.note(f"{len(data.participants):,} participants, {len(data.ratings):,} ratings; "
                      f"{n_excl:,} row(s) excluded; data hash {data.data_hash[:12]}")
    return written


def fit_stage(ctx: StageContext) -> list[Path]:
    """Fit the rating model (nutpie shows its progress bar) and save the run folder."""
    from ..model import diagnose, fit
    from ..model.fit import DIAGNOSTICS_FILE, META_FILE, POSTERIOR_FILE

    s = ctx.sampling
    spec = ctx.spec
    ctx.reporter.note(f"spec {spec.name!r} ({spec.family}, {spec.turns} turns, {spec.subset}); "
                      f"{s['chains']} chains x {s['draws']} draws, {s['tune']} tuning, seed {s['seed']}")
    from ..model.fit import RunError

    ctx.forget("run")
    try:
        run = fit(ctx.data, spec, chains=s["chains"], draws=s["draws"], tune=s["tune"], seed=s["seed"],
                  sampler=s["sampler"], target_accept=s.get("target_accept"), progress=ctx.progress,
                  out=ctx.run_dir)
    except RunError as exc:
        # The samplers answer Ctrl-C / SIGTERM by returning early, and fit() refuses the short
        # posterior: record the stage as interrupted, not failed.
        if "interrupted" in str(exc):
            raise SamplingInterrupted(str(exc)) from None
        raise
    got = (run.posterior.sizes.get("chain"), run.posterior.sizes.get("draw"))
    if got != (int(s["chains"]), int(s["draws"])):
        # nutpie answers Ctrl-C by returning the draws made so far; a short posterior must
        # not pass for the requested one.
        for name in (POSTERIOR_FILE, META_FILE, DIAGNOSTICS_FILE):
            (ctx.run_dir / name).unlink(missing_ok=True)
        raise SamplingInterrupted(f"sampling stopped early ({got[0]} chains x {got[1]} draws of "
                                  f"{s['chains']} x {s['draws']}); rerun to fit again")
    ctx.put("run", run)
    t = run.meta["timings"]
    diag = diagnose(run)
    rhat = f"{diag.max_rhat:.3f}" if diag.n_chains > 1 else "unavailable (1 chain)"
    ctx.reporter.note(f"compile {t.get('compile_s') or 0:.0f} s, sampling {t['sampling_s']:.0f} s; "
                      f"max R-hat {rhat}, min bulk ESS {diag.min_ess_bulk:.0f}, "
                      f"{diag.divergences} divergence(s)")
    return [ctx.run_dir / POSTERIOR_FILE, ctx.run_dir / META_FILE, ctx.run_dir / DIAGNOSTICS_FILE]


class SamplingInterrupted(KeyboardInterrupt):
    """Sampling was interrupted (Ctrl-C) and returned fewer draws than asked for."""


def _write_netcdf(ds: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def observed_scores(data: Any, spec: Any) -> Any:
    """The individual ratings a spec models (for the observed histogram of the checks)."""
    from ..model.design import select_ratings

    kept, _ = select_ratings(data.ratings, spec)
    return kept["score"].to_numpy(dtype=float)


def loo_summary(elpd: Any) -> dict[str, Any]:
    """A JSON-ready summary of an arviz PSIS-LOO result."""
    import numpy as np

    k = np.asarray(getattr(elpd, "pareto_k", np.array([])), dtype=float).ravel()
    # ArviZ's threshold depends on the number of draws, min(1 - 1/log10(S), 0.7).
    good_k = float(getattr(elpd, "good_k", None) or 0.7)
    return {
        "elpd_loo": float(elpd.elpd),
        "se": float(elpd.se),
        "p_loo": float(elpd.p),
        "n_observations": int(getattr(elpd, "n_data_points", k.size)),
        "n_samples": int(getattr(elpd, "n_samples", 0)),
        "unit": "participant",
        "pareto_k_max": float(np.nanmax(k)) if k.size else None,
        "pareto_k_threshold": good_k,
        "pareto_k_bad": int(np.sum(k > good_k)),
        "warning": bool(getattr(elpd, "warning", False)),
    }


@contextlib.contextmanager
def _quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


class GateFailure(StageError):
    """The convergence gate failed and ``[run] allow_unconverged`` is not set."""


def diagnostics_stage(ctx: StageContext) -> list[Path]:
    """Convergence table, posterior and prior predictive checks, PSIS-LOO, MixedLM cross-check."""
    from ..model import diagnose, loo, predictive_checks, prior_predictive

    cfg = ctx.config.sections["diagnostics"]
    run, folder = ctx.run, ctx.run_dir
    written = []
    diag = diagnose(run)
    written.append(write_text_atomic(folder / "convergence.csv",
                                     diag.table.reset_index(names="variable").to_csv(index=False)))
    scores = observed_scores(ctx.data, run.spec)
    ppc = predictive_checks(run, draws=cfg["ppc_draws"], seed=cfg["seed"], observed_scores=scores)
    written.append(_write_netcdf(ppc, folder / "ppc.nc"))
    with _quiet_logger("pymc"):  # PyMC logs the list of sampled variables at INFO
        prior = prior_predictive(run.design, run.spec, draws=cfg["ppc_draws"], seed=cfg["seed"],
                                 observed_scores=scores)
    written.append(_write_netcdf(prior, folder / "prior_predictive.nc"))
    if cfg["loo"] and "log_likelihood" in run.idata.children:
        summary = loo_summary(loo(run))
        written.append(write_json_atomic(folder / "loo.json", summary))
        ctx.reporter.note(f"PSIS-LOO elpd {summary['elpd_loo']:.1f} (se {summary['se']:.1f}), "
                          f"{summary['pareto_k_bad']} participant(s) with Pareto k > "
                          f"{summary['pareto_k_threshold']:.2f}")
    if cfg["crosscheck"]:
        import numpy as np

        from ..model.crosscheck import mixedlm_crosscheck

        try:
            table = mixedlm_crosscheck(run, ctx.data)
        except (np.linalg.LinAlgError, ValueError) as exc:
            # An auxiliary check: REML can fail on small or unbalanced data (a singular
            # fixed-effects design). Record why instead of failing the stage.
            message = f"{type(exc).__name__}: {exc}"
            written.append(write_json_atomic(folder / "crosscheck_mixedlm.json", {"error": message}))
            ctx.reporter.note(f"MixedLM cross-check failed ({message}); recorded, not fatal")
        else:
            written.append(write_text_atomic(folder / "crosscheck_mixedlm.csv", table.to_csv(index=False)))
            written.append(write_json_atomic(folder / "crosscheck_mixedlm.json", dict(table.attrs)))
            ctx.reporter.note(f"MixedLM cross-check: correlation of LLM effects "
                              f"{table.attrs['correlation']:.3f}")
    verdict = "passed" if diag.passed else "FAILED: " + "; ".join(diag.failures())
    ctx.reporter.note(f"convergence gate {verdict}")
    if cfg["strict"] is not None:
        ctx.reporter.note("[diagnostics] strict is deprecated and ignored: the pipeline stops on a failed "
                          "gate unless [run] allow_unconverged = true")
    return written


def _worst(per_variable: list[dict[str, Any]], n: int = 3) -> list[str]:
    """The *n* parameters furthest from convergence (lowest bulk ESS, then highest R-hat)."""
    import math

    def key(row: dict[str, Any]) -> tuple[float, float]:
        ess = row.get("min_ess_bulk")
        rhat = row.get("max_rhat")
        return (ess if isinstance(ess, (int, float)) and math.isfinite(ess) else math.inf,
                -(rhat if isinstance(rhat, (int, float)) and math.isfinite(rhat) else 0.0))

    out = []
    for row in sorted(per_variable, key=key)[:n]:
        rhat = row.get("max_rhat")
        rhat_text = f", R-hat {rhat:.3f}" if isinstance(rhat, (int, float)) and math.isfinite(rhat) else ""
        out.append(f"{row.get('variable')} (bulk ESS {row.get('min_ess_bulk', float('nan')):.0f}{rhat_text})")
    return out


def gate_stage(ctx: StageContext) -> list[Path]:
    """The convergence gate: stop before MRP and welfare when the fit failed it.

    With ``[run] allow_unconverged`` (``--allow-unconverged``) the pipeline goes on and
    every later result carries ``converged = false`` (CSV columns, dataset attributes,
    the supplement's captions, index and manifest). Writes ``run/gate.json``.
    """
    import json

    from ..model.fit import DIAGNOSTICS_FILE

    allow = bool(ctx.config.sections["run"]["allow_unconverged"])
    try:
        diag = json.loads((ctx.run_dir / DIAGNOSTICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        from ..model import diagnose

        diag = diagnose(ctx.run).to_dict()
    passed = bool(diag.get("passed"))
    failures = list(diag.get("failures") or [])
    worst = _worst(list(diag.get("per_variable") or []))
    record = {"passed": passed, "failures": failures, "worst": worst, "allow_unconverged": allow,
              "continued": passed or allow}
    path = write_json_atomic(ctx.run_dir / "gate.json", record)
    if passed:
        ctx.reporter.note("convergence gate passed")
        return [path]
    weakest = f" Weakest parameters: {', '.join(worst)}." if worst else ""
    if allow:
        ctx.reporter.note(f"convergence gate FAILED ({'; '.join(failures)}); going on because of "
                          "allow_unconverged: every later result is marked as from an unconverged fit")
        return [path]
    raise GateFailure(
        f"the convergence gate failed: {'; '.join(failures)}.{weakest} Stopped before MRP and welfare. "
        "Try more draws and tuning steps (--draws/--tune, or [sampling] draws/tune in the config; "
        "at least 2 chains), or go on anyway with --allow-unconverged ([run] allow_unconverged = true): "
        "every result is then marked as from an unconverged fit")


def poststratify_stage(ctx: StageContext, country: str) -> list[Path]:
    """MRP to the country's census: ``poststrat_<c>.nc`` and ``.csv``."""
    from ..poststrat import poststratify

    cfg = ctx.config.sections["poststrat"]
    res = poststratify(ctx.run, country, data=ctx.data, harmonisation=cfg["harmonisation"],
                       seed=cfg["seed"])
    nc, csv = res.save(ctx.run_dir)
    s = res.summary()
    top = s.loc[s["group"] == "all"].iloc[0]
    ctx.reporter.note(f"{country.upper()}: highest population mean {top['llm']} "
                      f"{top['mean']:.1f} [{top['q05']:.1f}, {top['q95']:.1f}], P(best) {top['p_best']:.2f}")
    return [nc, csv]


def model_welfare(run: Any, country: str, cfg: dict[str, Any], harmonisation: str = "default",
                  exposure: str = "full") -> Any:
    """The model-based welfare dataset (:func:`prism_stats.welfare.model_welfare`).

    A thin wrapper, so that the stage adapts to that function's signature in one place.
    """
    from ..welfare.model_based import model_welfare as _model_welfare

    return _model_welfare(run, country, rules=tuple(cfg["rules"]), sizes=tuple(cfg["sizes"]),
                          pools=tuple(cfg["pools"]), skewed_sizes=tuple(cfg["skewed_sizes"]),
                          targets=tuple(cfg["targets"]), replicates=cfg["replicates"],
                          draws=cfg["draws"], seed=cfg["seed"], harmonisation=harmonisation,
                          exposure=exposure)


def welfare_stage(ctx: StageContext, country: str) -> list[Path]:
    """Juries and welfare: model-based (``welfare_<c>.*``, census pools judged by the
    posterior) and/or design-based (``juries/welfare_<c>.*``, the original study's
    reproduction on the REP samples)."""
    from ..welfare import EXPOSURE_FOLDERS, mark_converged, run_juries, summarise_welfare, write_welfare
    from ..welfare.model_based import expected_gaps

    cfg = ctx.config.sections["welfare"]
    written: list[Path] = []
    notes = []
    for exposure in cfg["exposure"] if cfg["method"] in ("model", "both") else ():
        folder = ctx.run_dir / EXPOSURE_FOLDERS[exposure]
        ds = model_welfare(ctx.run, country, cfg, ctx.config.sections["poststrat"]["harmonisation"],
                           exposure=exposure)
        ds.attrs["converged"] = int(ctx.run.converged)  # marks every CSV of an unconverged fit
        written += list(write_welfare(ds, folder, country).values())
        written.append(write_text_atomic(folder / f"welfare_expected_gaps_{country}.csv",
                                         mark_converged(expected_gaps(ds), ds).to_csv(index=False)))
        notes.append((f"model ({exposure} exposure)", summarise_welfare(ds)))
    if cfg["method"] in ("design", "both"):
        ds = run_juries(ctx.data, [country], rules=cfg["rules"], sizes=cfg["sizes"],
                        pools=cfg["pools"], skewed_sizes=cfg["skewed_sizes"], targets=cfg["targets"],
                        replicates=cfg["replicates"], seed=cfg["seed"], imputed=cfg["imputed"])
        written += list(write_welfare(ds, ctx.run_dir / "juries", country).values())
        notes.append(("design", summarise_welfare(ds)))
    rule, target = cfg["rules"][0], cfg["targets"][0]
    for method, s in notes:
        sub = s.loc[(s["rule"] == rule) & (s["target"] == target)]
        ctx.reporter.note(f"{country.upper()} {method}-based: {len(sub)} schemes x {cfg['replicates']} "
                          f"juries; welfare ({rule}, target {target}) {sub['welfare_mean'].min():.3g} "
                          f"to {sub['welfare_mean'].max():.3g}")
    return written


def compare_stage(ctx: StageContext, country: str) -> list[Path]:
    """Raw, REP, raked and MRP means per LLM, ranks and rank correlations; raking balance."""
    import pandas as pd

    from ..comparators import write_country_comparison

    cfg = ctx.config.sections["compare"]
    poststrat = pd.read_csv(ctx.run_dir / f"poststrat_{country}.csv")
    bounds = tuple(cfg["bounds"]) if cfg["bounds"] else None
    comparison, weighting, written = write_country_comparison(
        ctx.data, country, poststrat, out=ctx.run_dir, harmonisation=cfg["harmonisation"],
        bounds=bounds, se=cfg["se"], replicates=cfg["replicates"], seed=cfg["seed"])
    rc = comparison.rank_correlations
    row = rc.loc[(rc["estimator_a"] == "raked") & (rc["estimator_b"] == "mrp")]
    if len(row):
        ctx.reporter.note(f"{country.upper()}: Spearman rank correlation raked vs MRP "
                          f"{float(row['spearman'].iloc[0]):.2f} over {int(row['n_llms'].iloc[0])} LLMs; "
                          f"Kish deff {weighting.kish_deff:.2f}")
    return written


def topics_stage(ctx: StageContext) -> list[Path]:
    """Dialogue diversity: topics, the study's regressions, the hierarchical model and the
    neighbourhoods (``prism_stats.topics``) into ``OUT/topics/``."""
    from ..topics import TopicError, run_topic_analysis

    cfg = ctx.config.sections["topics"]
    try:
        result = run_topic_analysis(
            ctx.data, embeddings=cfg["embeddings"], assignments=cfg["assignments"],
            topic_labels=cfg["topic_labels"], seed=cfg["seed"], sentence_model=cfg["sentence_model"],
            correction=None if cfg["correction"] == "none" else cfg["correction"], alpha=cfg["alpha"],
            model=cfg["model"], chains=cfg["chains"], draws=cfg["draws"], tune=cfg["tune"],
            neighbourhoods=cfg["neighbourhoods"], progress=ctx.reporter.note)
    except TopicError as exc:
        raise StageError(f"topics: {exc}") from None
    s = result.assignments.summary()
    ctx.reporter.note(f"{s['topics']} topics, {s['outliers']:,} outliers; stage times "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    return result.save(ctx.out / "topics")


def supplement_stage(ctx: StageContext) -> list[Path]:
    """Tables, figures, the index page and the supplement manifest."""
    from ..report.supplement import build_supplement

    result = build_supplement(ctx.out, ctx.supplement_dir, options=ctx.config.section("supplement"))
    ctx.reporter.note(f"{len(result.tables)} tables, {len(result.figures)} figures; "
                      f"index: {result.index_html}")
    for problem in result.skipped:
        ctx.reporter.note(f"skipped: {problem}")
    return result.files


# --- declarations -------------------------------------------------------------------------------


def build_stages(config: Any, *, demo: bool = False) -> list[Stage]:
    """The stage list of a pipeline with *config* (see the module docstring)."""
    stages: list[Stage] = []
    if demo:
        stages.append(Stage(
            "synthesize", synthesize_stage, config=("demo",),
            outputs=("data/survey.jsonl", "data/conversations.jsonl", "data/utterances.jsonl"),
            description="synthetic PRISM release (the embedded default)"))
    stages += [
        Stage("validate", validate_stage, depends=("synthesize",) if demo else (),
              config=("data",), uses_data=True,
              outputs=("validate/exclusions.json", "validate/descriptives.csv"),
              description="read, validate and describe the release"),
        Stage("fit", fit_stage, depends=("validate",), config=("data", "model", "sampling"),
              uses_data=True, uses_spec=True, versions=FIT_VERSIONS,
              outputs=("run/posterior.nc", "run/run.json", "run/diagnostics.json"),
              description="fit the rating model"),
        Stage("diagnostics", diagnostics_stage, depends=("fit",), config=("diagnostics",),
              outputs=("run/convergence.csv", "run/ppc.nc", "run/prior_predictive.nc"),
              description="convergence, predictive checks, LOO"),
        # Reruns when [run] allow_unconverged changes; later stages do not depend on it (so
        # the flag never recomputes them), they only run after it.
        Stage("gate", gate_stage, depends=("fit",), config=("run",), outputs=("run/gate.json",),
              description="convergence gate (stops before MRP unless --allow-unconverged)"),
    ]
    countries: Sequence[str] = config.countries
    for c in countries:
        stages.append(Stage(
            f"poststratify_{c}", partial(poststratify_stage, country=c), depends=("fit",),
            config=("poststrat",), params={"country": c},
            outputs=(f"run/poststrat_{c}.nc", f"run/poststrat_{c}.csv"),
            description=f"MRP to the {c.upper()} census"))
    # Design-based juries need only the data; the model-based analysis needs the fit too.
    welfare_depends = ("validate",) if config.sections["welfare"]["method"] == "design" else ("validate", "fit")
    for c in countries:
        stages.append(Stage(
            f"welfare_{c}", partial(welfare_stage, country=c), depends=welfare_depends,
            config=("welfare", "poststrat"), params={"country": c},
            description=f"juries and welfare, {c.upper()}"))
    for c in countries:
        stages.append(Stage(
            f"compare_{c}", partial(compare_stage, country=c),
            depends=("validate", f"poststratify_{c}"), config=("compare",), params={"country": c},
            outputs=(f"run/compare_{c}.csv", f"run/compare_{c}_balance.csv"),
            description=f"raw vs REP vs raked vs MRP, {c.upper()}"))
    from .rankings_stages import rankings_stages  # preference diversity (OUT/rankings/)

    stages += rankings_stages(config)
    if config.sections["topics"]["enabled"]:
        stages.append(Stage(
            "topics", topics_stage, depends=("validate",), config=("topics",), uses_data=True,
            outputs=("topics/assignments.csv", "topics/lpm.csv", "topics/topics.json"),
            description="dialogue diversity: topics, regressions, hierarchical model"))
    stages.append(Stage(
        "supplement", supplement_stage, depends=tuple(s.name for s in stages if s.name != "gate"),
        config=("supplement",),
        outputs=("supplement/index.html", "supplement/index.md", "supplement/manifest.json"),
        description="tables, figures, index page and manifest"))
    return stages


def stage_names(config: Any, *, demo: bool = False) -> list[str]:
    """Names of the stages :func:`build_stages` declares, in order."""
    return [s.name for s in build_stages(config, demo=demo)]
