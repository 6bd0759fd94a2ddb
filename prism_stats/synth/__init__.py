r"""The synthetic PRISM generator: a release-format dataset from a known hierarchical process.

:func:`synthesize` writes ``survey.jsonl``, ``conversations.jsonl``,
``utterances.jsonl`` (and, with ``metadata=True``, ``metadata.jsonl``) in the exact
schema of the PRISM release (:mod:`prism_stats.data.schema`: same fields, field order,
nesting and quirks), calibrated to the published margins at the default size of 1,500
participants, and writes the truth beside the data in ``truth/``. It is the package's
default dataset: tests use small sizes (100-150 participants), benchmarks and the demo
the default size. :func:`generate` is the in-memory variant.

It depends on :mod:`prism_stats.data` only through the documented release schema and
the shared vocabularies (:mod:`prism_stats.vocab`), so the reader and validator never
know it exists. Modules, in the order the generator runs them:

* :mod:`.tables` / :mod:`.priors` -- published margins and the generator's priors;
* :mod:`.people` -- participants (demographics, survey answers);
* :mod:`.conversations` -- who talks to which LLMs, how often and for how long;
* :mod:`.text` -- filler prose and responses carrying known text features;
* :mod:`.topics` -- the opening prompts' planted topics;
* :mod:`.truth` -- the true parameters; :mod:`.scores` -- the score process;
  :mod:`.population` -- the true census-population means;
* :mod:`.release` -- release flags (balanced subset, REP samples) and the JSONL writers;
* :mod:`.generate` -- :func:`generate` / :func:`synthesize`, which run the stages;
* :mod:`.util` -- quota allocation and raking helpers.

The stages are separable, so simulation-based calibration and sweeps can reuse them:
:func:`~prism_stats.synth.people.make_participants` (demographics and survey),
:func:`~prism_stats.synth.conversations.make_design` (conversations, opening sets, turns,
text features), :func:`~prism_stats.synth.truth.make_truth` (parameters),
:func:`~prism_stats.synth.truth.scores` (the score process) and
:func:`write_release`. Each stage draws from its own child of
``numpy.random.SeedSequence(seed)``, so e.g. new scores for the same design only need
a new score seed.

Participants and design (calibration targets: codebook §4 and SPEC.md §1)
------------------------------------------------------------------------------
* Residence and birth countries by quota (published counts; ~88% born where they
  live), Prolific study locale a function of residence (``us``, ``uk``, lower-case
  country names, ``asia`` for Japan/Korea). UK/US study participants draw age x sex x
  census ethnicity from the eligible-pool tables of SPEC §2.3; everybody else is raked to
  what remains of the published age, gender and ethnicity margins (ethnicity given birth
  country). Religion, employment, education, marital status, English, LLM familiarity
  and use, stated preferences and free texts follow (see ``prism_stats.synth.people``). ~6.9% are
  survey-only. ``lm_frequency_use`` and the use-case dicts are null exactly when neither
  direct nor indirect use is "Yes".
* 1-7 conversations per participant (mean 5.74, sd 1.0); types 38.9/30.7/30.4%, with
  ~89% of participants having all three types; 2-22 turns (mean 3.39, sd 1.6).
  Openers show 4/3/2 LLMs at the published frequencies 6,241/1,545/225 (of 8,011),
  drawn without replacement with weights calibrated to the published spread of opening
  appearances; later turns are two responses (``within_turn_id`` 0/1) of the opener's
  chosen LLM. In ~1.4% of later interactions the A and B texts are identical.
* Response texts are filler prose with the published length distribution (mean 565,
  sd 388 characters) that carries the text features below; 0.2% are "EMPTY STRING".

The score process (the truth)
-----------------------------
For participant p (residence country k, age band a, gender g, census ethnicity group e
-- ``vocab.ETHNICITY_GROUPS``, "Prefer not to say" its own level), LLM m, conversation
type t and turn group (0 = opening, 1 = later)::

    latent = intercept + participant_effect[p] + llm_effect[m] + country_effect[k]
             + ctype_effect[t] + turn_effect * 1[later] + age_effect[a]
             + gender_effect[g] + ethnicity_effect[e]
             + llm_age[m, a] + llm_gender[m, g] + llm_ethnicity[m, e]
             + sum_f text_beta[f] * (x_f - E[x_f])  +  noise,   noise ~ N(0, sigma_noise)
    observed = 50                                  with probability pi_default,
               round(clip(latent, 1, 100))         otherwise.

* ``intercept`` = 69.1, ``sigma_participant`` = 12, ``sigma_noise`` = 30.6,
  ``pi_default`` = 0.03 (the slider's start value), ``turn_effect`` = 2. At the
  default size these give a score mean of ~65.1 and sd ~29.3 (published 65.1, 29.3) with
  piles at 1, 50 and 100.
* ``participant_effect`` ~ N(0, sigma_participant), centred to sum to zero.
  ``llm_effect``: fixed, in the published Rank Centrality order (command +9.3 ...
  flan-t5-xxl -12.7), centred. ``country_effect``: one level per residence country
  present among participants with conversations (ISO3, vocabulary order); GBR -1.5 and
  USA +1.5 fixed, the others N(0, 3) centred among themselves. ``ctype_effect``
  (unguided +2.5, values +0.5, controversy -3) and the demographic main effects (older
  raters more lenient: age -3 ... +4; gender, ethnicity a few points) are fixed and
  centred over their levels (all vocabulary levels, "Prefer not to say" included).
* **Planted heterogeneity** (``truth.PLANTED``, double-centred by construction):
  ``llm_gender`` command (+4 male / -4 female) and claude-instant-1 (-4 / +4);
  ``llm_ethnicity`` palm-2 (+3.5 for every non-white group, -7 white and PNTS) and
  command, claude-instant-1 (+3.5 white and PNTS / -1.75 non-white); ``llm_age``
  zephyr-7b-beta (+5.5 under 45 / -5.5 over 45) and command, claude-instant-1
  (-2.75 / +2.75). In both the UK and the US census population the best LLM is then
  command overall and for male, white and over-45 people, claude-instant-1 for non-male,
  palm-2 for non-white and zephyr-7b-beta for under-45 people (gaps to the runner-up
  of ~1-5 points on the observed scale; ``truth.json`` lists them). The other 17 LLMs
  get random interactions N(0, 1.5), double-centred among themselves.
  :func:`~prism_stats.synth.truth.make_truth` checks the pattern on the true population means and
  redraws the random parts if it fails.
* **Text features** (SPEC §3.9): length (characters), line breaks, enumeration, final
  "?", de-anthropomorphising phrase, refusal phrase, self-identification, plus an
  "EMPTY STRING" indicator (shift -62 so that empty responses score ~1). They are drawn
  independently of the LLM, the participant and everything else and centred at their
  exact expectations, so they add noise but leave the rating-model truth unchanged.
  Their latent effects ``text_beta`` are the published coefficients of the full opener
  OLS divided by the attenuation of the observed scale (``tables.TEXT_ATTENUATION``:
  0.615 for length, 0.745-0.79 for the flags), so that an OLS of the synthetic opening
  scores on the features recovers the published coefficients (``text_beta_observed``).
  Being independent, the features explain more of the score variance (R^2 ~ 0.13) than
  in the release (0.056), where they are correlated. ``sigma`` in the truth is the total
  residual sd sqrt(sigma_noise^2 + var(text)) ~ 35.7 that a model without text
  features sees.
* ``if_chosen``: at the opening turn the highest score of the interaction (ties at
  random); at later turns the higher of A/B (ties at random), and both when A and B are
  identical (the release's text-equality quirk).

Opening prompts and their planted topics
----------------------------------------
Every opening prompt is about one of 20 planted topics or none (:mod:`.topics`): a
multinomial logit in gender, age, region, ethnicity, religion and conversation type with
participant random effects and planted effects (values-guided -> relationships,
non-binary -> gender identity, Middle East -> Israel-Palestine, ...), drawn from its own
stream (the ``topics`` stage) and written with the published prompt lengths. Nothing else
of the release depends on it.

The truth written beside the data (``truth/``)
-----------------------------------------------
``params.nc``: every parameter with dims ``chain`` = ``draw`` = 1 and the model's named
dims and labels (``participant`` = participants with conversations, ``llm`` short names,
``country`` ISO3, ``conversation_type``, ``age``, ``gender``, ``ethnicity``), the scales
``sigma_<family>`` and the text-feature terms. ``population_means.csv``: the true
census-population mean opening-turn observed score of a *new* member per (country,
group, LLM) -- for each census cell (default harmonisation) and LLM,
``E[observed] = pi_default * 50 + (1 - pi_default) * E[clip(Z, 1, 100)]`` with
``Z = eta + text + N(0, sqrt(sigma_participant^2 + sigma_noise^2))``, eta the latent mean
with the GBR/USA country effect, the opening turn and the conversation type averaged with
equal weights (``truth.true_population_means``), then census-weighted over the
group's cells. ``truth.json``: scalars, the planted pattern, group optima, seed, sizes,
achieved moments and the REP cell tables. ``topics.csv`` (true topic per conversation),
``topic_effects.csv`` (every topic x term effect in log-odds and percentage points) and
``topics.json`` (settings, intercepts, shares): see :mod:`.topics`.

Departures from the model (:mod:`prism_stats.synth.scenarios`)
--------------------------------------------------------------
``generate(..., departures="country")`` (or a dict of knobs, or
``prism-stats synth --scenario NAME``) gives the world structures the main rating model
lacks -- LLM x country preferences, rater scale use (compressed and extreme raters,
heteroscedastic raters), piles at 1 and 100, heaping at round numbers, a non-additive
LLM x age x gender pattern, skewed UK/US rater pools -- each off by default, with the
truth recomputed on the observed 1-100 scale. :data:`SCENARIOS` names the combinations the
recovery benchmark runs.
"""

from __future__ import annotations

from .generate import (
    DEFAULT_PARTICIPANTS,
    DEFAULT_SEED,
    SCENARIOS,
    STAGES,
    Departures,
    Design,
    SynthData,
    SynthError,
    SynthResult,
    expected_observed,
    generate,
    make_design,
    make_participants,
    make_truth,
    scores,
    stage_rngs,
    synthesize,
    text_features,
    true_population_means,
    write_release,
    write_truth,
)

__all__ = [
    "DEFAULT_PARTICIPANTS",
    "DEFAULT_SEED",
    "SCENARIOS",
    "STAGES",
    "Departures",
    "Design",
    "SynthData",
    "SynthError",
    "SynthResult",
    "expected_observed",
    "generate",
    "make_design",
    "make_participants",
    "make_truth",
    "scores",
    "stage_rngs",
    "synthesize",
    "text_features",
    "true_population_means",
    "write_release",
    "write_truth",
]
