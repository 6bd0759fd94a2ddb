"""``prism-stats topics``: dialogue diversity -- topics, who talks about what, neighbourhoods.

Exit codes: 0 success, 2 bad options or inputs (a missing release, assignments that do not
fit the data, embeddings that are not installed), 1 invalid data or outputs that cannot be
written; a one-line message, no traceback (see ``prism_stats.cli._options``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import check_output, load_data, output_folder, usage_error
from ._options import (
    EXIT_CODES_EPILOG,
    Correction,
    DataOpt,
    Embeddings,
    LegacyDataArg,
    data_folder,
    merge_alias,
)


class StepDisplay:
    """Progress of the analysis: one line per finished step with its time, and a spinner
    with the running step (rich); plain lines without a terminal or with --no-progress."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.start = self.t0 = time.perf_counter()
        self.current: str | None = None
        self.status = None
        if enabled:
            from rich.console import Console

            self.console = Console(highlight=False)

    def __call__(self, message: str) -> None:
        self._finish()
        self.current, self.t0 = message, time.perf_counter()
        if not self.enabled:
            return
        if self.status is None:
            self.status = self.console.status(message)
            self.status.start()
        else:
            self.status.update(message)

    def _finish(self) -> None:
        if self.current is not None and self.enabled:
            self.console.print(f"  [green]✓[/green] {self.current} "
                               f"[dim]({time.perf_counter() - self.t0:.1f} s)[/dim]")
        self.current = None

    def close(self) -> float:
        self._finish()
        if self.status is not None:
            self.status.stop()
        return time.perf_counter() - self.start


def topics_cmd(
    legacy: LegacyDataArg = None,
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (created if needed).",
                                             show_default=False)] = None,
    embeddings: Annotated[Embeddings, typer.Option(
        "--embeddings", help="Prompt embeddings: tfidf (offline) or sentence-transformers (needs the "
        "[topics] extra and a locally available model).")] = Embeddings.tfidf,
    assignments: Annotated[Path | None, typer.Option(
        "--assignments", exists=True, dir_okay=False,
        help="CSV conversation -> topic (e.g. the study's released clusters): skip discovery.",
        show_default=False)] = None,
    topic_labels: Annotated[Path | None, typer.Option(
        "--topic-labels", exists=True, dir_okay=False,
        help="CSV of the known topics (topic, topic_label) the assignments must use.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of UMAP, the SVD, the sampler and the "
                                                            "neighbourhood draws (the study used 42).")] = 42,
    sentence_model: Annotated[str | None, typer.Option(
        "--sentence-model", help="Sentence-transformer model name or local folder (default all-mpnet-base-v2).",
        show_default=False)] = None,
    min_cluster_size: Annotated[int | None, typer.Option(
        "--min-cluster-size", min=2,
        help="HDBSCAN minimum cluster size (default: 80 x prompts / 8,011, at least 10).", show_default=False)]
    = None,
    correction: Annotated[Correction, typer.Option(
        "--correction", help="Multiple-testing correction of the regressions.")] = Correction.holm,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Significance level.")] = 0.01,
    fit: Annotated[bool | None, typer.Option(
        "--fit/--no-fit", help="Fit the hierarchical model (default: fit).", show_default=False)] = None,
    model: Annotated[bool | None, typer.Option("--model/--no-model", hidden=True,
                                               help="Old name of --fit/--no-fit.")] = None,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Chains of the hierarchical model.")] = 2,
    draws: Annotated[int, typer.Option("--draws", min=10, help="Draws per chain.")] = 300,
    tune: Annotated[int, typer.Option("--tune", min=10, help="Tuning steps per chain.")] = 300,
    neighbourhoods: Annotated[bool, typer.Option(
        "--neighbourhoods/--no-neighbourhoods", help="Near-duplicate neighbourhoods.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Show the progress display.")] = True,
) -> None:
    """Topics of the opening prompts and who talks about what (SPEC §3.2-3.3).

    Discovers topics (embeddings -> UMAP -> HDBSCAN -> c-TF-IDF terms) unless
    --assignments gives them, fits the study's linear probability models (HC1 and
    participant-clustered SEs) and a hierarchical multinomial model, finds near-duplicate
    neighbourhoods, and writes OUT/*.csv, OUT/topics.json, OUT/tables/ and OUT/figures/.
    """
    from prism_stats.report.topics import write_topic_supplement
    from prism_stats.topics import TopicError, run_topic_analysis

    folder = data_folder(data, legacy)
    if out is None:
        usage_error("--out: no output folder given")
    if topic_labels is not None and assignments is None:
        usage_error("--topic-labels needs --assignments")
    # --model/--no-model was this option's name; --model names a spec everywhere else
    fit_model = merge_alias(fit, model, "--fit/--no-fit", "--model/--no-model")
    check_output(out)
    prism = load_data(folder)
    display = StepDisplay(progress)
    try:
        with output_folder(out) as dest:  # locked from the start; results renamed in as one set
            result = run_topic_analysis(
                prism, embeddings=embeddings.value, assignments=assignments, topic_labels=topic_labels,
                seed=seed, sentence_model=sentence_model, min_cluster_size=min_cluster_size,
                correction=None if correction is Correction.none else correction.value, alpha=alpha,
                model=True if fit_model is None else fit_model, chains=chains, draws=draws, tune=tune,
                neighbourhoods=neighbourhoods, progress=display)
            display("writing tables and figures")
            paths = result.save(dest)
        with output_folder(out) as dest:  # the tables and figures read the files written above
            paths += write_topic_supplement(dest, dest)
    except TopicError as exc:  # --assignments / --topic-labels / --embeddings unusable as given
        display.close()
        usage_error(str(exc))
    except BaseException:
        display.close()
        raise
    total = display.close()
    s = result.assignments.summary()
    counts = result.lpm.counts().set_index("factor")
    typer.echo(f"{s['topics']} topics, {s['outliers']:,} outliers ({s['outlier_share']:.1%}) "
               f"of {s['conversations']:,} conversations ({s['source']})")
    typer.echo(f"regressions: {int(counts.loc['all', 'significant_hc1'])} significant "
               f"coefficients with HC1 SEs, {int(counts.loc['all', 'significant_cluster'])} "
               f"with clustered SEs (of {int(counts.loc['all', 'coefficients'])}; "
               f"{result.lpm.correction or 'no'} correction, alpha {alpha})")
    if result.model is not None:
        d = result.model.diagnostics
        typer.echo(f"hierarchical model: {int(result.model.credible(alpha).sum())} credible "
                   f"effects; {len(result.disagreements)} disagreement(s) with the regressions; "
                   f"max R-hat {d['max_rhat']:.3f}, min ESS {d['min_ess_bulk']:.0f}, "
                   f"{d['divergences']} divergence(s)")
    if result.truth and "ari" in result.truth:
        typer.echo(f"synthetic truth: adjusted Rand index {result.truth['ari']:.3f}")
    typer.echo(f"wrote {len(paths)} files to {out} in {total:.0f} s")


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""
    app.command("topics", epilog=EXIT_CODES_EPILOG)(topics_cmd)
