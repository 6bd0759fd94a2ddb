"""The pipeline configuration: defaults, the example file, validation, overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from prism_stats.pipeline import DEFAULTS, ConfigError, PipelineConfig, load_config
from prism_stats.pipeline.stages import stage_names

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_complete_and_valid():
    cfg = load_config(None)
    assert cfg.countries == ["uk", "us"]
    assert set(cfg.sections) == set(DEFAULTS)
    assert cfg.sections["welfare"]["replicates"] == 1000
    assert cfg.source == "<defaults>"


def test_example_config_matches_the_defaults():
    # configs/run.toml documents every key with its default value; keep them in sync.
    cfg = PipelineConfig.from_toml(REPO / "configs" / "run.toml")
    assert cfg.to_dict() == load_config(None).to_dict()


def test_example_config_lists_every_section():
    raw = tomllib.loads((REPO / "configs" / "run.toml").read_text(encoding="utf-8"))
    assert set(DEFAULTS) <= set(raw)


def test_partial_file_keeps_other_defaults(tmp_path):
    cfg = PipelineConfig.from_toml(write(tmp_path, "countries = ['us']\n[welfare]\nreplicates = 50\n"))
    assert cfg.countries == ["us"]
    assert cfg.sections["welfare"]["replicates"] == 50
    assert cfg.sections["welfare"]["rules"] == DEFAULTS["welfare"]["rules"]
    assert cfg.sections["sampling"] == DEFAULTS["sampling"]
    assert stage_names(cfg) == ["validate", "fit", "diagnostics", "gate", "poststratify_us", "welfare_us",
                                "compare_us", "rankings", "stated", "rankings_model", "supplement"]


def test_relative_paths_are_resolved_against_the_file(tmp_path):
    cfg = PipelineConfig.from_toml(write(tmp_path, "[data]\nfolder = 'release'\n[model]\nspec = 'my.toml'\n"))
    assert cfg.sections["data"]["folder"] == str((tmp_path / "release").resolve())
    assert cfg.sections["model"]["spec"] == str((tmp_path / "my.toml").resolve())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[sampling]\ndraw = 10\n", "unknown key(s) in [sampling]: ['draw']"),
        ("[samplings]\ndraws = 10\n", "unknown section(s) or key(s) ['samplings']"),
        ("countries = ['uk', 'fr']\n", "unknown country 'fr'"),
        ("countries = ['uk', 'uk']\n", "must not repeat"),
        ("[sampling]\ndraws = 0\n", "sampling.draws must be a positive integer"),
        ("[sampling]\nchains = true\n", "sampling.chains must be a positive integer"),
        ("[sampling]\nsampler = 'stan'\n", "sampling.sampler must be one of"),
        ("[welfare]\npools = ['representative', 'rich']\n", "welfare.pools: unknown value(s) ['rich']"),
        ("[welfare]\nsizes = [10, -1]\n", "welfare.sizes must be a non-empty list of positive integers"),
        ("[welfare]\nmethod = 'magic'\n", "welfare.method must be one of"),
        ("[welfare]\nexposure = ['partial']\n", "welfare.exposure: unknown value(s) ['partial']"),
        ("[compare]\nbounds = [2.0, 3.0]\n", "compare.bounds must be [lo, hi]"),
        ("[data]\nstrict = 'yes'\n", "data.strict must be true or false"),
        ("[supplement]\nformats = ['gif']\n", "supplement.formats"),
        ("[supplement]\nrecovery_benchmark = 3\n", "supplement.recovery_benchmark must be the path"),
        ("[welfare\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_toml(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_replace_overrides_and_ignores_none():
    cfg = load_config(None).replace(["us"], sampling={"draws": 200, "chains": None},
                                    welfare={"replicates": 10})
    assert cfg.countries == ["us"]
    assert cfg.sections["sampling"]["draws"] == 200
    assert cfg.sections["sampling"]["chains"] is None
    assert cfg.sections["welfare"]["replicates"] == 10
    assert load_config(None).sections["welfare"]["replicates"] == 1000  # the original is untouched
    with pytest.raises(ConfigError, match="unknown key sampling.drawz"):
        cfg.replace(sampling={"drawz": 1})
    with pytest.raises(ConfigError, match="sampling.draws must be a positive integer"):
        cfg.replace(sampling={"draws": -5})


def test_data_location_is_not_part_of_the_fingerprint():
    a = load_config(None).replace(data={"folder": "/a"})
    b = load_config(None).replace(data={"folder": "/b"})
    assert a.fingerprint_section("data") == b.fingerprint_section("data")
    assert a.section("data") != b.section("data")
    c = load_config(None).replace(data={"strict": False})
    assert c.fingerprint_section("data") != a.fingerprint_section("data")
