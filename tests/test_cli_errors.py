"""The command line's contract without MCMC: one vocabulary, help texts, exit codes, and a
one-line error for every bad input of every command, with nothing half-written left behind.

(The paths that need a fitted run -- damaged run folders, moved data, the convergence gate --
are in ``test_cli_runs.py``.)
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import typer
from data_helpers import FIXTURE, copy_release, set_field
from typer.testing import CliRunner

from prism_stats import __version__
from prism_stats.cli import app
from prism_stats.cli import _options as O

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]

COMMANDS = ["fit", "diagnose", "ppc", "loo", "poststratify", "crosscheck", "juries", "welfare", "rake",
            "compare", "rankings", "stated", "regressions", "topics", "run", "demo", "supplement", "sbc",
            "sweep", "synth", "data validate", "data summary"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def assert_one_line_error(res, code: int, needle: str) -> None:
    """Exit *code*, exactly one ``error:`` line containing *needle*, no traceback."""
    assert res.exit_code == code, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    assert needle in errors[0], res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)


# --- vocabulary, help and version ----------------------------------------------------------------


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.strip() == f"prism-stats {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_documents_the_exit_codes_and_lists_choices(command):
    res = invoke(*command.split(), "--help")
    assert res.exit_code == 0, res.output
    assert "Exit codes:" in res.output and "3    failed convergence gate" in res.output
    for option, values in (("--sampler", "<nutpie|pymc>"), ("--harmonisation", "<default|original>"),
                           ("--country", "uk|us[,...]"), ("--rule", "mean|chosen|veto[,...]"),
                           ("--formats", "png|pdf|svg[,...]"), ("--se", "<linearisation|bootstrap|none>")):
        if f"{option} " in res.output:
            assert values in res.output, (command, option)


def test_help_prints_bracketed_words_as_written():
    text = " ".join(invoke("run", "--help").output.split())  # help lines wrap
    assert "(or [data] folder in the config)" in text
    assert "[run] allow_unconverged" in text


def test_one_name_per_concept():
    """--data, --out, --model, --country, --seed wherever the concept occurs."""
    wants = {
        "fit": ("--data", "--out", "--model", "--seed", "--sampler"), "run": ("--data", "--out", "--model", "--seed",
                                                                          "--country", "--allow-unconverged"),
        "juries": ("--data", "--out", "--country", "--seed"), "rake": ("--data", "--out", "--country"),
        "rankings": ("--data", "--out", "--country", "--seed"), "stated": ("--data", "--out", "--seed"),
        "regressions": ("--data", "--out"), "topics": ("--data", "--out", "--seed", "--fit"),
        "poststratify": ("--country", "--seed", "--data"),
        "welfare": ("--country", "--seed"), "compare": ("--country", "--seed", "--data", "--replicates"),
        "sbc": ("--model", "--data", "--out", "--seed"), "sweep": ("--data", "--out"), "synth": ("--out", "--seed"),
        "data validate": ("--data",), "data summary": ("--data",),
    }
    for command, options in wants.items():
        out = invoke(*command.split(), "--help").output
        for option in options:
            assert option in out, (command, option)
    assert "--spec " not in invoke("run", "--help").output  # the old name is a hidden alias


def test_enums_agree_with_the_package_vocabularies():
    from prism_stats.census import HARMONISATIONS
    from prism_stats.model.fit import SAMPLERS
    from prism_stats.vocab import COUNTRIES_MRP
    from prism_stats.welfare import POOLS, RULES, TARGETS

    assert tuple(s.value for s in O.Sampler) == SAMPLERS
    assert tuple(h.value for h in O.Harmonisation) == HARMONISATIONS
    assert (O.RULES, O.POOLS, O.TARGETS) == (RULES, POOLS, TARGETS)
    from prism_stats.topics import METHODS

    assert tuple(e.value for e in O.Embeddings) == METHODS
    assert O.parse_countries("UK, gbr,GB,usa,US") == list(COUNTRIES_MRP)


def test_country_spellings_alike_everywhere(tmp_path):
    from prism_stats.pipeline import PipelineConfig

    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('countries = ["UK", "USA"]\n')
    assert PipelineConfig.from_toml(cfg_file).countries == ["uk", "us"]
    with pytest.raises(typer.BadParameter, match="unknown country 'fr'"):
        O.parse_countries("uk,fr")


# --- bad input of every command: one line, the documented code, nothing written --------------------


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_input")
    release = copy_release(base / "release", metadata=False)
    broken = copy_release(base / "broken", metadata=False)
    set_field(broken, "utterances.jsonl", 17, "score", 101)
    empty = base / "empty"
    empty.mkdir()
    bad_meta = base / "bad_meta"
    bad_meta.mkdir()
    (bad_meta / "run.json").write_text("{not json")
    a_file = base / "a_file.txt"
    a_file.write_text("x")
    bad_grid = base / "grid.toml"
    bad_grid.write_text("this is = = not toml")
    cfg = base / "run.toml"
    cfg.write_text("[sampling]\ndraws = -1\n")
    return {"D": release, "BROKEN": broken, "EMPTY": empty, "BADMETA": bad_meta, "FILE": a_file,
            "MISSING": base / "missing", "GRID": bad_grid, "CFG": cfg,
            "GOODGRID": REPO / "models" / "grids" / "small.toml"}


CASES = [
    # fit
    (["fit", "--data", "D", "--out", "OUT", "--sampler", "stan"], 2, "'stan' is not one of 'nutpie', 'pymc'"),
    (["fit", "--data", "D", "--out", "OUT", "--draws", "-5"], 2, "--draws"),
    (["fit", "--data", "D", "--out", "OUT", "--chains", "0"], 2, "--chains"),
    (["fit", "--data", "D", "--out", "OUT", "--tune", "0"], 2, "--tune"),
    (["fit", "--data", "D", "--out", "OUT", "--model", "nosuch"], 2, "no model spec named 'nosuch'"),
    (["fit", "--out", "OUT"], 2, "--data"),
    (["fit", "--data", "MISSING", "--out", "OUT"], 2, "does not exist"),
    (["fit", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["fit", "--data", "BROKEN", "--out", "OUT"], 1, "utterances.jsonl:17: field 'score'"),
    # run-folder commands
    (["diagnose", "MISSING"], 2, "does not exist"),
    (["diagnose", "FILE"], 2, "it is a file"),
    (["diagnose", "EMPTY"], 2, "not a run folder"),
    (["diagnose", "EMPTY", "--rhat-max", "0.5"], 2, "--rhat-max"),
    (["ppc", "EMPTY", "--draws", "0"], 2, "--draws"),
    (["ppc", "MISSING"], 2, "does not exist"),
    (["loo", "EMPTY"], 2, "not a run folder"),
    (["poststratify", "EMPTY", "--harmonisation", "foo"], 2, "'foo' is not one of 'default', 'original'"),
    (["poststratify", "EMPTY", "--country", "fr"], 2, "unknown country 'fr'"),
    (["poststratify", "EMPTY", "--country", "uk,,us"], 2, "empty item"),
    (["poststratify", "EMPTY"], 2, "not a run folder"),
    (["poststratify", "FILE"], 2, "it is a file"),
    (["welfare", "FILE"], 2, "it is a file"),
    (["compare", "FILE"], 2, "it is a file"),
    (["rake", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["crosscheck", "EMPTY"], 2, "not a run folder"),
    (["welfare", "EMPTY", "--rule", "median"], 2, "unknown value 'median'"),
    (["welfare", "EMPTY", "--sizes", "0"], 2, "must be >= 1"),
    (["welfare", "EMPTY", "--replicates", "0"], 2, "--replicates"),
    (["welfare", "EMPTY"], 2, "not a run folder"),
    (["compare", "EMPTY"], 2, "run.json not found"),
    (["compare", "EMPTY", "--se", "jackknife"], 2, "'jackknife' is not one of"),
    (["compare", "EMPTY", "--bounds", "3,0.3"], 2, "0 < LO < 1 < HI"),
    (["compare", "BADMETA"], 1, "not valid JSON"),
    (["supplement", "EMPTY", "--out", "OUT"], 2, "neither a pipeline output folder nor a run folder"),
    (["supplement", "EMPTY", "--out", "OUT", "--formats", "gif"], 2, "unknown value 'gif'"),
    (["supplement", "MISSING", "--out", "OUT"], 2, "does not exist"),
    # data commands
    (["juries", "--out", "OUT"], 2, "--data"),
    (["juries", "--data", "MISSING", "--out", "OUT"], 2, "does not exist"),
    (["juries", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["juries", "--data", "D", "--out", "OUT", "--target", "rich"], 2, "unknown value 'rich'"),
    (["juries", "--data", "BROKEN", "--out", "OUT"], 1, "utterances.jsonl:17"),
    (["rake", "--data", "D", "--out", "OUT", "--method", "magic"], 2, "'magic' is not one of"),
    (["rake", "--data", "D", "--out", "OUT/w.csv", "--country", "uk,us"], 2, "one CSV file"),
    (["rake", "--data", "D", "--out", "OUT", "--margins", "shoe_size"], 2, "unknown variable(s) ['shoe_size']"),
    (["rake", "--data", "D", "--out", "OUT", "--bounds", "x"], 2, "--bounds"),
    (["rake", "D", "--data", "EMPTY", "--out", "OUT"], 2, "given twice"),
    (["rankings", "--out", "OUT"], 2, "--data"),
    (["rankings", "--data", "D", "--out", "OUT", "--country", "fr"], 2, "unknown country 'fr'"),
    (["rankings", "--data", "D", "--out", "OUT", "--formats", "gif"], 2, "unknown value 'gif'"),
    (["rankings", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["stated", "--data", "D", "--out", "OUT", "--attributes", "vibes"], 2, "'vibes' is not one of"),
    (["regressions", "--data", "D", "--out", "OUT", "--turn", "2"], 2, "'2' is not one of"),
    (["regressions", "--data", "D", "--out", "OUT", "--which", "astrology"], 2, "unknown value 'astrology'"),
    (["topics", "--out", "OUT"], 2, "--data"),
    (["topics", "--data", "D", "--out", "OUT", "--embeddings", "bert"], 2, "'bert' is not one of"),
    (["topics", "--data", "D", "--out", "OUT", "--assignments", "MISSING"], 2, "--assignments"),
    (["topics", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["data", "validate"], 2, "--data"),
    (["data", "summary", "--data", "MISSING"], 2, "does not exist"),
    # pipeline
    (["run", "--out", "OUT"], 2, "no data folder"),
    (["run", "--data", "D", "--out", "OUT", "--sampler", "stan"], 2, "'stan' is not one of"),
    (["run", "--data", "D", "--out", "OUT", "--draws", "-5"], 2, "--draws"),
    (["run", "--data", "D", "--out", "OUT", "--country", "uk,fr"], 2, "unknown country 'fr'"),
    (["run", "--data", "D", "--out", "OUT", "--countries", "uk,fr"], 2, "unknown country 'fr'"),
    (["run", "--data", "D", "--out", "OUT", "--model", "nosuch"], 2, "no model spec named 'nosuch'"),
    (["run", "--data", "D", "--out", "OUT", "--config", "MISSING"], 2, "does not exist"),
    (["run", "--data", "D", "--out", "OUT", "--config", "CFG"], 2, "sampling.draws must be a positive integer"),
    (["run", "--data", "D", "--out", "FILE"], 2, "exists and is a file"),
    (["run", "--data", "D", "--out", "OUT", "--until", "nosuch"], 2, "unknown stage 'nosuch'"),
    (["demo", "--out", "FILE"], 2, "exists and is a file"),
    (["demo", "--out", "OUT", "--participants", "3"], 2, "--participants"),
    # calibration and sweeps
    (["sbc", "--model", "nosuch", "--out", "OUT"], 2, "no model spec named 'nosuch'"),
    (["sbc", "--replicates", "0", "--out", "OUT"], 2, "--replicates"),
    (["sbc", "--serial", "--scheduler", "tcp://127.0.0.1:1", "--out", "OUT"], 2, "exclude each other"),
    (["sbc", "--fit-prior", "shoe=1", "--out", "OUT"], 2, "--fit-prior"),
    (["sbc", "--data", "MISSING", "--out", "OUT"], 2, "does not exist"),
    (["sbc", "--out", "FILE"], 2, "exists and is a file"),
    (["sweep", "--grid", "MISSING", "--out", "OUT"], 2, "--grid"),
    (["sweep", "--grid", "GRID", "--out", "OUT"], 2, "--grid"),
    (["sweep", "--grid", "GOODGRID", "--out", "FILE", "--serial"], 2, "exists and is a file"),
    (["sweep", "--grid", "GOODGRID", "--out", "OUT", "--workers", "0"], 2, "--workers"),
    (["synth", "--out", "OUT", "--participants", "5"], 2, "--participants"),
    (["synth", "--out", "FILE"], 2, "exists and is a file"),
]


@pytest.mark.parametrize(("args", "code", "needle"), CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_gives_one_line_and_writes_nothing(places, tmp_path, args, code, needle):
    out = tmp_path / "out"
    resolved = [str(places[a]) if a in places else a.replace("OUT", str(out)) for a in args]
    before = {p: p.stat().st_mtime_ns for p in Path(places["D"]).rglob("*")}
    res = runner.invoke(app, resolved, env={"COLUMNS": "200"})
    assert_one_line_error(res, code, needle)
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))  # nothing half-written
    assert {p: p.stat().st_mtime_ns for p in Path(places["D"]).rglob("*")} == before  # inputs untouched
    assert not list(Path(places["EMPTY"]).iterdir())


def test_an_unwritable_output_location_is_refused_before_any_work(places, tmp_path, monkeypatch):
    """As root every folder is writable, so the check's verdict is simulated."""
    import prism_stats.cli._common as common

    monkeypatch.setattr(common.os, "access", lambda path, mode: not mode & common.os.W_OK)
    for args in (["juries", "--data", places["D"], "--out", tmp_path / "o"],
                 ["rake", "--data", places["D"], "--out", tmp_path / "o"],
                 ["fit", "--data", places["D"], "--out", tmp_path / "o"],
                 ["run", "--data", places["D"], "--out", tmp_path / "o"],
                 ["synth", "--out", tmp_path / "o"]):
        res = invoke(*args)
        assert_one_line_error(res, 2, "is not writable")
        assert "fitting" not in res.output and not (tmp_path / "o").exists()


def test_pipeline_messages_keep_their_brackets(places, tmp_path):
    res = invoke("run", "--data", places["BROKEN"], "--out", tmp_path / "o", "--until", "validate")
    assert res.exit_code == 1, res.output
    # once in the stage report (printed with rich), once in the error line
    assert " ".join(res.output.split()).count("set [data] strict = false") == 2, res.output


# --- data commands --------------------------------------------------------------------------------


def test_data_folder_option_and_old_positional_spelling(places):
    assert invoke("data", "validate", "--data", places["D"]).exit_code == 0
    assert invoke("data", "validate", places["D"]).exit_code == 0  # the old spelling still works
    assert invoke("data", "summary", "--data", places["D"]).exit_code == 0


def test_validate_json_reports_a_missing_file_as_json(places, tmp_path):
    folder = copy_release(tmp_path / "r", metadata=False)
    (folder / "conversations.jsonl").unlink()
    res = invoke("data", "validate", "--data", folder, "--json")
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["exit_code"] == 2 and "conversations.jsonl" in out["error"]


def test_summary_lenient_on_an_empty_file_is_an_error(tmp_path):
    folder = copy_release(tmp_path / "r", metadata=False)
    (folder / "utterances.jsonl").write_text("")
    res = invoke("data", "summary", "--data", folder, "--lenient")
    assert_one_line_error(res, 1, "no usable rows remain")
    res = invoke("data", "summary", "--data", folder, "--lenient", "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["ok"] is False


def test_summary_notes_a_stale_gz_beside_the_plain_file_like_validate(tmp_path):
    import gzip

    folder = copy_release(tmp_path / "r", metadata=False)
    (folder / "survey.jsonl.gz").write_bytes(gzip.compress(b""))
    note = "using survey.jsonl (also found: survey.jsonl.gz)"
    assert note in invoke("data", "validate", "--data", folder).output
    assert note in invoke("data", "summary", "--data", folder).output
    assert note in json.dumps(json.loads(invoke("data", "summary", "--data", folder, "--json").stdout))


def test_lenient_commands_print_the_exclusion_report(places, tmp_path, monkeypatch):
    import prism_stats.model
    from prism_stats.model import DesignError

    res = invoke("juries", "--data", places["BROKEN"], "--out", tmp_path / "j", "--lenient", "--replicates", "5",
                 "--country", "uk", "--no-progress")
    assert "Excluded rows" in res.output and "out of range (score)" in res.output, res.output
    assert "Traceback" not in res.output

    def stop(*args, **kwargs):  # no sampling needed: the report is printed before it
        raise DesignError("stopped by the test")

    monkeypatch.setattr(prism_stats.model, "fit", stop)
    res = invoke("fit", "--data", places["BROKEN"], "--out", tmp_path / "f", "--lenient", "--no-progress")
    assert "Excluded rows" in res.output and "out of range (score)" in res.output, res.output
    assert_one_line_error(res, 1, "stopped by the test")
    assert not (tmp_path / "f").exists()


def test_synth_never_overwrites_a_release_without_force(tmp_path):
    out = tmp_path / "rel"
    assert invoke("synth", "--out", out, "--participants", "12", "--seed", "1").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    res = invoke("synth", "--out", out, "--participants", "10", "--seed", "2")
    assert_one_line_error(res, 2, "already holds a release")
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before  # nothing destroyed
    res = invoke("synth", "--out", out, "--participants", "10", "--seed", "2", "--force")
    assert res.exit_code == 0, res.output
    assert sum(1 for _ in open(out / "survey.jsonl")) == 10
    assert sorted(p.name for p in out.iterdir()) == ["conversations.jsonl", "survey.jsonl", "truth",
                                                     "utterances.jsonl"]  # no temporary or lock files


# --- the safety machinery -------------------------------------------------------------------------


def test_write_set_renames_all_or_nothing(tmp_path):
    from prism_stats._io import write_set, write_text_atomic

    with write_set():
        write_text_atomic(tmp_path / "a.csv", "1")
        write_text_atomic(tmp_path / "b.csv", "2")
        assert not (tmp_path / "a.csv").exists()  # not before the set ends
    assert (tmp_path / "a.csv").read_text() == "1" and (tmp_path / "b.csv").read_text() == "2"
    with pytest.raises(KeyboardInterrupt), write_set():
        write_text_atomic(tmp_path / "a.csv", "new")
        raise KeyboardInterrupt
    assert (tmp_path / "a.csv").read_text() == "1"  # the old file is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no .part left


def test_a_second_writer_of_a_folder_fails_with_a_clear_message(places, tmp_path):
    from prism_stats._io import folder_lock

    out = tmp_path / "j"
    with folder_lock(out, remove=True):  # as every command holds it
        res = invoke("juries", "--data", places["D"], "--out", out, "--pools", "representative", "--sizes", "2",
                     "--replicates", "5")
    assert_one_line_error(res, 1, "is writing")
    assert sorted(p.name for p in out.iterdir()) == []  # the holder's lock file is gone, nothing written


def test_sigterm_is_handled_like_ctrl_c():
    from prism_stats.cli._common import install_signal_handlers

    old = signal.getsignal(signal.SIGTERM)
    try:
        install_signal_handlers()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, old)


def test_an_interrupted_command_removes_its_temporary_files(places, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, turned into it) while the results are written: no .part, no half set."""
    import prism_stats.welfare

    real = prism_stats.welfare.write_welfare

    def interrupted(ds, out, country):
        real(ds, out, country)  # the files of this country are staged ...
        raise KeyboardInterrupt  # ... and the command is interrupted before the set is complete

    monkeypatch.setattr(prism_stats.welfare, "write_welfare", interrupted)
    out = tmp_path / "j"
    res = invoke("juries", "--data", FIXTURE, "--out", out, "--pools", "representative", "--sizes", "2",
                 "--replicates", "5", "--no-progress")
    assert res.exit_code == 130 and "interrupted: nothing half-written was kept" in res.output
    assert not out.exists()
