"""Synthetic PRISM generator: schema, quirks, ids, determinism and truth (small sizes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from prism_stats import census, vocab
from prism_stats.data import schema
from prism_stats.synth import (
    SynthError,
    generate,
    stage_rngs,
    synthesize,
    text_features,
)
from prism_stats.synth import tables as T
from prism_stats.synth.population import (
    GROUPS,
    check_planted,
    group_optima,
    true_population_means,
)
from prism_stats.synth.release import interaction_ids
from prism_stats.synth.scores import expected_observed, scores
from prism_stats.synth.text import (
    FeatureDistribution,
    default_feature_distribution,
    draw_features,
    response_texts,
)
from prism_stats.synth.truth import PLANTED
from prism_stats.synth.util import allocate

N = 150
SEED = 11


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth150")
    result = synthesize(out, N, SEED, metadata=True)
    files = {
        name: _read(out / name)
        for name in ("survey.jsonl", "conversations.jsonl", "utterances.jsonl", "metadata.jsonl")
    }
    return result, files


@pytest.fixture(scope="module")
def utterances(release):
    return pd.DataFrame(release[1]["utterances.jsonl"])


# --- schema ---------------------------------------------------------------------------------


def test_field_order_matches_release_schema(release):
    _, files = release
    for spec in (schema.SURVEY, schema.CONVERSATIONS, schema.UTTERANCES, schema.METADATA):
        for rec in files[spec.filename]:
            assert tuple(rec) == spec.field_names


def test_nested_keys_in_release_order(release):
    _, files = release
    nested = {f.name: tuple(k.name for k in f.keys) for f in schema.SURVEY_FIELDS if f.keys}
    for rec in files["survey.jsonl"]:
        for name, keys in nested.items():
            assert tuple(rec[name]) == keys, name
    user_keys = tuple(k.name for k in schema.HISTORY_USER_KEYS)
    model_keys = tuple(k.name for k in schema.HISTORY_MODEL_KEYS)
    attr_keys = tuple(vocab.ATTRIBUTE_KEYS)
    for conv in files["conversations.jsonl"]:
        assert tuple(conv["performance_attributes"]) == attr_keys
        assert tuple(conv["choice_attributes"]) == attr_keys
        for item in conv["conversation_history"]:
            assert tuple(item) == (user_keys if item["role"] == "user" else model_keys)


def test_values_come_from_the_vocabularies(release):
    _, files = release
    for spec in (schema.SURVEY, schema.UTTERANCES):
        for rec in files[spec.filename]:
            for f in spec.fields:
                if f.categories is not None and not (f.nullable and rec[f.name] is None):
                    assert rec[f.name] in f.categories, (f.name, rec[f.name])


def test_round_trip_through_the_reader(release):
    from prism_stats.data import load_prism, validate_release

    result, files = release
    report = validate_release(result.folder)
    assert report.ok, str(report)
    assert not report.errors and not report.warnings, [str(w) for w in report.warnings[:5]]
    data = load_prism(result.folder)
    assert len(data.participants) == N
    assert len(data.ratings) == len(files["utterances.jsonl"])
    assert len(data.choice_sets) == len(files["conversations.jsonl"])
    # The tidy scores are the generator's scores, in file order.
    np.testing.assert_array_equal(
        data.ratings["score"].to_numpy(), result.data.ratings["score"].to_numpy()
    )


# --- ids ------------------------------------------------------------------------------------


def test_ids_are_sequential(release):
    _, files = release
    assert [r["user_id"] for r in files["survey.jsonl"]] == [f"user{i}" for i in range(N)]
    convs = files["conversations.jsonl"]
    assert [c["conversation_id"] for c in convs] == [f"c{i}" for i in range(len(convs))]
    utts = files["utterances.jsonl"]
    assert [u["utterance_id"] for u in utts] == [f"ut{i}" for i in range(len(utts))]


def test_interaction_ids_follow_lexicographic_conversation_order(utterances):
    u = utterances.drop_duplicates(["conversation_id", "turn"])
    expected = sorted(zip(u["conversation_id"], u["turn"], strict=True))  # string order of ids
    k_of = {key: f"int{k}" for k, key in enumerate(expected)}
    got = dict(
        zip(zip(u["conversation_id"], u["turn"], strict=True), u["interaction_id"], strict=True)
    )
    assert got == k_of
    # The SPEC example: with >= 101 conversations, c100 sorts right after c10's turns.
    assert interaction_ids(np.array([0, 1, 10, 100, 2]), np.zeros(5, int)).tolist() == [
        "int0",
        "int1",
        "int2",
        "int3",
        "int4",
    ]
    assert interaction_ids(np.array([2, 10]), np.array([0, 0])).tolist() == ["int1", "int0"]


# --- structure and quirks ---------------------------------------------------------------------


def test_opening_mix_and_later_pairs(release, utterances):
    sizes = utterances.groupby("interaction_id").agg(n=("turn", "size"), turn=("turn", "first"))
    opening = sizes[sizes["turn"] == 0]["n"]
    assert set(opening) <= {2, 3, 4}
    assert (sizes[sizes["turn"] > 0]["n"] == 2).all()
    n_open = len(opening)
    pub = T.OPENING_SIZE_COUNTS
    for k in (2, 3, 4):  # allocated quotas: within rounding of the published shares
        assert abs((opening == k).sum() - n_open * pub[k] / sum(pub.values())) <= 1
    assert len(opening) == len(release[1]["conversations.jsonl"])


def test_opening_llms_distinct_and_later_turns_use_the_chosen_one(release):
    _, files = release
    for conv in files["conversations.jsonl"]:
        hist = [h for h in conv["conversation_history"] if h["role"] == "model"]
        opening = [h for h in hist if h["turn"] == 0]
        names = [h["model_name"] for h in opening]
        assert len(set(names)) == len(names)
        assert sorted(h["within_turn_id"] for h in opening) == list(range(len(opening)))
        chosen = [h for h in opening if h["if_chosen"]]
        assert len(chosen) == 1
        assert chosen[0]["score"] == max(h["score"] for h in opening)
        later = [h for h in hist if h["turn"] > 0]
        assert {h["model_name"] for h in later} <= {chosen[0]["model_name"]}
        assert conv["conversation_turns"] == 1 + max((h["turn"] for h in later), default=0)
        assert conv["opening_prompt"] == conv["conversation_history"][0]["content"]


def test_later_turns_choose_the_higher_and_identical_texts_both(utterances):
    later = utterances[utterances["turn"] > 0]
    both = 0
    for _, pair in later.groupby("interaction_id"):
        a, b = pair.iloc[0], pair.iloc[1]
        if a["model_response"] == b["model_response"]:
            assert a["if_chosen"] and b["if_chosen"]
            both += 1
        else:
            assert a["if_chosen"] != b["if_chosen"]
            winner = a if a["if_chosen"] else b
            assert winner["score"] == max(a["score"], b["score"])
    assert both > 0  # the release quirk is present


def test_empty_strings_present_and_scored_low(utterances):
    empty = utterances[utterances["model_response"] == "EMPTY STRING"]
    assert len(empty) > 0
    assert empty["score"].median() < 25


def test_survey_only_and_conversation_counts(release):
    _, files = release
    survey = pd.DataFrame(files["survey.jsonl"])
    only = survey["survey_only"].sum()
    assert abs(only - N * T.SURVEY_ONLY / T.N_RELEASE) <= 1
    assert (survey.loc[survey["survey_only"], "num_completed_conversations"] == 0).all()
    per_user = pd.Series([c["user_id"] for c in files["conversations.jsonl"]]).value_counts()
    n_conv = survey.set_index("user_id")["num_completed_conversations"]
    assert (per_user == n_conv[per_user.index]).all()
    assert set(per_user.index) == set(survey.loc[~survey["survey_only"], "user_id"])


def test_lm_frequency_null_exactly_when_not_shown(release):
    _, files = release
    for rec in files["survey.jsonl"]:
        shown = rec["lm_direct_use"] == "Yes" or rec["lm_indirect_use"] == "Yes"
        assert (rec["lm_frequency_use"] is not None) == shown
        flags = [v for k, v in rec["lm_usecases"].items() if k != "other_text"]
        order = list(rec["order_lm_usecases"].values())
        if shown:
            assert all(v in (0, 1) for v in flags)
            assert (
                sorted(order) == list(range(1, len(order) + 1))
                and rec["order_lm_usecases"]["other"] == 19
            )
            assert (rec["lm_usecases"]["other_text"] is not None) == bool(
                rec["lm_usecases"]["other"]
            )
        else:
            assert (
                all(v is None for v in flags + order) and rec["lm_usecases"]["other_text"] is None
            )
        assert rec["order_stated_prefs"]["other"] == 9
        assert sorted(rec["order_stated_prefs"].values()) == list(range(1, 10))


def test_location_and_simplified_categories_are_consistent(release):
    _, files = release
    for rec in files["survey.jsonl"]:
        loc = rec["location"]
        for side in ("birth", "reside"):
            iso = loc[f"{side}_countryISO"]
            if iso == vocab.PREFER_NOT:
                assert loc[f"{side}_country"] == vocab.PREFER_NOT
            else:
                c = vocab.COUNTRY_BY_ISO3[iso]
                assert (
                    loc[f"{side}_country"],
                    loc[f"{side}_region"],
                    loc[f"{side}_subregion"],
                ) == (c.name, c.region, c.subregion)
        same = loc["same_birth_reside_country"]
        if vocab.PREFER_NOT not in (loc["birth_countryISO"], loc["reside_countryISO"]):
            assert same == ("Yes" if loc["birth_countryISO"] == loc["reside_countryISO"] else "No")
        assert (
            rec["ethnicity"]["simplified"]
            == schema.ETHNICITY_SIMPLIFIED_FROM_CATEGORISED[rec["ethnicity"]["categorised"]]
        )
        assert (
            rec["religion"]["simplified"]
            == schema.RELIGION_SIMPLIFIED_FROM_CATEGORISED[rec["religion"]["categorised"]]
        )
        assert rec["religion"]["self_described"] == rec["religion"]["self_described"].lower()
        assert rec["study_locale"] == T.LOCALE_OF_RESIDENCE[loc["reside_countryISO"]]


def test_text_features_carried_by_the_texts(release, utterances):
    result, _ = release
    design = result.data.design.responses
    found = text_features(utterances["model_response"])
    for col in found.columns:
        np.testing.assert_array_equal(
            found[col].to_numpy(), design[col].to_numpy().astype(int), err_msg=col
        )
    assert (design.loc[design["empty_string"], "text_length"] == len("EMPTY STRING")).all()


def test_texts_carry_features_whatever_the_llm():
    rng = np.random.default_rng(5)
    base = default_feature_distribution()
    every = dict(base.prevalence, self_identification=1.0, deanthro=0.5, refusal=0.5)
    feats = draw_features(3000, FeatureDistribution(base.support, base.p_length, every, 0.01), rng)
    assert feats.loc[~feats["empty_string"], "self_identification"].all()
    llm = rng.integers(0, len(vocab.LLMS), len(feats))
    texts = response_texts(feats, llm, rng)
    found = text_features(texts)
    for col in found.columns:
        np.testing.assert_array_equal(
            found[col].to_numpy(), feats[col].to_numpy().astype(int), err_msg=col
        )


# --- flags ----------------------------------------------------------------------------------


def test_balanced_subset_rule(release):
    _, files = release
    convs = pd.DataFrame(files["conversations.jsonl"])
    survey = pd.DataFrame(files["survey.jsonl"]).set_index("user_id")
    for user, sub in convs.groupby("user_id"):
        counts = (
            sub["conversation_type"].value_counts().reindex(vocab.CONVERSATION_TYPES, fill_value=0)
        )
        kept = sub[sub["included_in_balanced_subset"]]["conversation_type"].value_counts()
        kept = kept.reindex(vocab.CONVERSATION_TYPES, fill_value=0)
        assert (kept == counts.min()).all()
        assert survey.loc[user, "included_in_balanced_subset"] == (counts.min() > 0)
    assert not survey.loc[survey["survey_only"], "included_in_balanced_subset"].any()
    utts = pd.DataFrame(files["utterances.jsonl"])
    flag = convs.set_index("conversation_id")["included_in_balanced_subset"]
    assert (
        utts["included_in_balanced_subset"].to_numpy() == flag[utts["conversation_id"]].to_numpy()
    ).all()


def test_rep_samples_follow_the_cell_procedure(release):
    result, files = release
    survey = pd.DataFrame(files["survey.jsonl"])
    eth = survey["ethnicity"].map(
        lambda d: vocab.CENSUS_ETHNICITY_FROM_CATEGORISED.get(d["categorised"])
    )
    age = survey["age"].map(vocab.AGE_FROM_RELEASE)
    cell = age + "|" + survey["gender"] + "|" + eth.astype(str)
    for country, flag in (("uk", "included_in_UK_REP"), ("us", "included_in_US_REP")):
        pool = (
            survey["included_in_balanced_subset"]
            & (survey["study_locale"] == country)
            & survey["gender"].isin(vocab.CENSUS_SEXES)
            & eth.notna()
            & age.isin(vocab.CENSUS_AGES)
        )
        assert not (survey[flag] & ~pool).any()
        cf = census.frame(country, harmonisation="original")
        for label, share in zip(cf["cell"], cf["share"], strict=True):
            available = (pool & (cell == label)).sum()
            selected = (survey[flag] & (cell == label)).sum()
            assert selected == min(int(share * 300) + 1, available), label
        assert survey[flag].sum() == result.counts[f"{country}_rep"]


# --- determinism ----------------------------------------------------------------------------


def _hashes(folder: Path) -> dict[str, str]:
    return {
        n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
        for n in ("survey.jsonl", "conversations.jsonl", "utterances.jsonl")
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    first = synthesize(tmp_path / "a", 40, 7)
    synthesize(tmp_path / "b", 40, 7)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    other = generate(40, 8)
    assert other.records()["survey.jsonl"] != first.data.records()["survey.jsonl"]
    a = xr.open_dataset(tmp_path / "a" / "truth" / "params.nc", engine="h5netcdf")
    b = xr.open_dataset(tmp_path / "b" / "truth" / "params.nc", engine="h5netcdf")
    xr.testing.assert_identical(a.load(), b.load())


def test_stages_have_independent_streams():
    one, two = stage_rngs(3), stage_rngs(3)
    assert one["scores"].random() == two["scores"].random()
    assert stage_rngs(3)["scores"].random() != stage_rngs(3)["design"].random()


# --- the truth ------------------------------------------------------------------------------


def test_truth_files_and_labels(release):
    result, files = release
    folder = result.folder / "truth"
    ds = xr.open_dataset(folder / "params.nc", engine="h5netcdf").load()
    assert ds.sizes["chain"] == 1 and ds.sizes["draw"] == 1
    with_conv = [
        r["user_id"] for r in files["survey.jsonl"] if r["num_completed_conversations"] > 0
    ]
    assert list(ds["participant"].values) == with_conv
    assert list(ds["llm"].values) == list(vocab.LLM_SHORT_NAMES)
    assert list(ds["age"].values) == list(vocab.AGE_BANDS)
    assert list(ds["gender"].values) == list(vocab.GENDERS)
    assert list(ds["ethnicity"].values) == list(vocab.ETHNICITY_GROUPS)
    assert list(ds["conversation_type"].values) == list(vocab.CONVERSATION_TYPES)
    resid = {
        r["location"]["reside_countryISO"]
        for r in files["survey.jsonl"]
        if r["num_completed_conversations"]
    }
    assert set(ds["country"].values) == resid and {"GBR", "USA"} <= resid
    for name in ("intercept", "sigma", "sigma_participant", "pi_default", "turn_effect"):
        assert ds[name].dims == ("chain", "draw")
    assert ds.attrs["seed"] == SEED and ds.attrs["n_participants"] == N
    pop = pd.read_csv(folder / "population_means.csv")
    assert list(pop.columns) == ["country", "group", "llm", "mean"]
    assert len(pop) == 2 * len(GROUPS) * len(vocab.LLMS)
    info = json.loads((folder / "truth.json").read_text())
    assert info["seed"] == SEED and info["planted"]["check"]["holds"]
    assert info["counts"]["utterances"] == len(files["utterances.jsonl"])


def test_effects_are_zero_sum(release):
    ds = release[0].truth.isel(chain=0, draw=0)
    for name in (
        "participant_effect",
        "llm_effect",
        "country_effect",
        "ctype_effect",
        "age_effect",
        "gender_effect",
        "ethnicity_effect",
    ):
        assert abs(float(ds[name].sum())) < 1e-9, name
    for name in ("llm_age", "llm_gender", "llm_ethnicity"):
        m = ds[name].transpose("llm", ...).values
        np.testing.assert_allclose(m.sum(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(m.sum(axis=1), 0, atol=1e-9)
    # The planted rows are in place.
    for name, rows in PLANTED.items():
        for llm, row in rows.items():
            np.testing.assert_allclose(ds[name].sel(llm=llm).values, row)


def test_llm_effects_follow_the_published_order(release):
    llm = release[0].truth["llm_effect"].isel(chain=0, draw=0).to_series()
    assert llm.idxmax() == "command" and llm.idxmin() == "flan-t5-xxl"
    assert 8 < llm.max() < 14 and -14 < llm.min() < -8


def test_planted_optima_differ_between_complementary_groups(release):
    pop = release[0].population_means
    opt = group_optima(pop).set_index(["country", "group"])["best"]
    assert check_planted(pop)["holds"]
    for country in vocab.COUNTRIES_MRP:
        assert opt[(country, "all")] == "command"
        assert (
            opt[(country, "male")] == "command" and opt[(country, "nonmale")] == "claude-instant-1"
        )
        assert opt[(country, "white")] == "command" and opt[(country, "nonwhite")] == "palm-2"
        assert (
            opt[(country, "over45")] == "command" and opt[(country, "under45")] == "zephyr-7b-beta"
        )


def test_check_planted_detects_a_flat_truth(release):
    flat = release[0].truth.copy(deep=True)
    for name in ("llm_age", "llm_gender", "llm_ethnicity"):
        flat[name] = flat[name] * 0
    assert not check_planted(true_population_means(flat))["holds"]


def test_expected_observed_matches_numerical_integration():
    z = np.linspace(-300, 400, 700001)
    dz = z[1] - z[0]
    for eta, sd, pi in ((65.0, 30.0, 0.03), (10.0, 20.0, 0.0), (95.0, 12.0, 0.1)):
        dens = np.exp(-0.5 * ((z - eta) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        numeric = pi * 50 + (1 - pi) * np.sum(np.clip(z, 1, 100) * dens) * dz
        assert expected_observed(eta, sd, pi) == pytest.approx(numeric, abs=1e-6)
    # A discrete offset is the average of shifted expectations.
    mix = expected_observed(
        60.0, 20.0, 0.0, offsets=np.array([-10.0, 10.0]), weights=np.array([0.5, 0.5])
    )
    assert mix == pytest.approx((expected_observed(50.0, 20.0) + expected_observed(70.0, 20.0)) / 2)


def test_population_means_agree_with_monte_carlo_new_members(release):
    """Brute force: simulate new census members through the generator's own pieces."""
    truth = release[0].truth.isel(chain=0, draw=0)
    closed = release[0].population_means.set_index(["country", "group", "llm"])["mean"]
    rng = np.random.default_rng(2024)
    dist = default_feature_distribution()
    m = 150_000

    def effect(name: str, dim: str, labels: np.ndarray) -> np.ndarray:
        da = truth[name]
        return da.values[pd.Index(da[dim].values).get_indexer(labels)]

    worst = 0.0
    for country in vocab.COUNTRIES_MRP:
        cf = census.frame(country)
        cell = rng.choice(len(cf), m, p=cf["share"].to_numpy())
        age = cf["age"].astype(str).to_numpy()[cell]
        sex = cf["sex"].astype(str).to_numpy()[cell]
        eth = cf["ethnicity"].astype(str).to_numpy()[cell]
        ctype = rng.choice(np.array(vocab.CONVERSATION_TYPES), m)
        feats = draw_features(m, dist, rng)[list(truth["text_feature"].values)].to_numpy(float)
        text = (feats - truth["text_mean"].values) @ truth["text_beta"].values
        member = (
            float(truth["intercept"])
            + float(truth["country_effect"].sel(country=vocab.COUNTRY_ISO3[country]))
            + effect("ctype_effect", "conversation_type", ctype)
            + effect("age_effect", "age", age)
            + effect("gender_effect", "gender", sex)
            + effect("ethnicity_effect", "ethnicity", eth)
            + rng.normal(0, float(truth["sigma_participant"]), m)
            + text
        )
        masks = {g: np.asarray(v)[cell] for g, v in census.group_masks(cf).items()}
        for llm in vocab.LLM_SHORT_NAMES:
            t = truth.sel(llm=llm)
            latent = (
                member
                + float(t["llm_effect"])
                + t["llm_age"].values[pd.Index(truth["age"].values).get_indexer(age)]
                + t["llm_gender"].values[pd.Index(truth["gender"].values).get_indexer(sex)]
                + t["llm_ethnicity"].values[pd.Index(truth["ethnicity"].values).get_indexer(eth)]
                + rng.normal(0, float(truth["sigma_noise"]), m)
            )
            obs = np.where(
                rng.random(m) < float(truth["pi_default"]), 50.0, np.clip(latent, 1, 100)
            )
            for g, mask in masks.items():
                x = obs[mask]
                z = (x.mean() - closed[(country, g, llm)]) / (x.std() / np.sqrt(len(x)))
                worst = max(worst, abs(z))
    assert worst < 4.5


def test_scores_reuse_design_with_new_truth(release):
    data = release[0].data
    truth = data.truth.copy(deep=True)
    truth["intercept"] = truth["intercept"] + 20
    rng = np.random.default_rng(1)
    new = scores(data.design, data.participants, truth, rng)
    assert new["score"].mean() > data.ratings["score"].mean() + 5
    assert (new["llm"].to_numpy() >= 0).all()


def test_bad_inputs_raise_clear_errors(release):
    with pytest.raises(SynthError):
        generate(5)
    data = release[0].data
    truth = data.truth.drop_sel(participant=data.truth["participant"].values[:1])
    with pytest.raises(SynthError, match="participant"):
        scores(data.design, data.participants, truth, np.random.default_rng(0))


def test_allocate_is_exact_and_proportional():
    rng = np.random.default_rng(0)
    out = allocate([3, 1, 1, 5], 10, rng)
    assert out.tolist() == [3, 1, 1, 5]
    sums = np.array([allocate([1, 1, 1], 2, rng) for _ in range(3000)])
    assert (sums.sum(axis=1) == 2).all()
    np.testing.assert_allclose(sums.mean(axis=0), 2 / 3, atol=0.03)


def test_cli_synth_writes_a_release(tmp_path):
    from typer.testing import CliRunner

    from prism_stats.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        ["synth", "--out", str(tmp_path / "r"), "--participants", "30", "--seed", "2", "--json"],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["counts"]["participants"] == 30
    assert (tmp_path / "r" / "utterances.jsonl").exists() and (
        tmp_path / "r" / "truth" / "params.nc"
    ).exists()
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--participants", "3"])
    assert bad.exit_code == 2
