"""Checks of each conversation's history: turns, messages, opening sets and chosen models.

A mixin of the release checker (:mod:`prism_stats.data.validate`): every message of
``conversation_history`` is field-checked, then the structure of each conversation
(turns ``0..n-1``, one user message per turn, 2-4 responses at the opening turn with
exactly one chosen, two responses of the chosen model later, agreeing counts, providers
and opening prompt) is verified.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from prism_stats import vocab

from . import schema
from .fields import _JSON_TYPE, _check_object, _Sink
from .io import RawFile
from .issues import _short


class _ConversationChecks:
    """The release checker's checks of ``conversation_history`` (structure, turns, models)."""

    raw: dict[str, RawFile]
    sinks: dict[str, _Sink]
    extra_keys: Counter[tuple[str, str]]
    history: pd.DataFrame

    def conversation_history(self) -> None:
        rf, sink = self.raw["conversations"], self.sinks["conversations"]
        recs = rf.records
        conv_rows = [k for k, r in enumerate(recs) if type(r.get("conversation_history")) is list]
        u_rows: list[int] = []
        u_items: list[dict[str, Any]] = []
        u_pos: list[int] = []
        m_rows: list[int] = []
        m_items: list[dict[str, Any]] = []
        m_pos: list[int] = []
        for k in conv_rows:
            for j, item in enumerate(recs[k]["conversation_history"]):
                if type(item) is not dict:
                    sink.error(
                        k,
                        f"conversation_history[{j}]",
                        item,
                        "wrong type",
                        f"{_short(item)} is {_JSON_TYPE.get(type(item), '?')}, expected an object",
                    )
                    continue
                role = item.get("role")
                if role == "model":
                    m_rows.append(k)
                    m_items.append(item)
                    m_pos.append(j)
                elif role == "user":
                    u_rows.append(k)
                    u_items.append(item)
                    u_pos.append(j)
                else:
                    what = (
                        "required field is missing"
                        if role is None
                        else (
                            f"{_short(role)} is not a known category (expected one of 'user', 'model')"
                        )
                    )
                    rule = "missing field" if role is None else "unknown category"
                    sink.error(k, f"conversation_history[{j}].role", role, rule, what)
        _check_object(
            u_items,
            u_rows,
            schema.HISTORY_USER_KEYS,
            lambda q: f"conversation_history[{u_pos[q]}]",
            sink,
            self.extra_keys,
        )
        _check_object(
            m_items,
            m_rows,
            schema.HISTORY_MODEL_KEYS,
            lambda q: f"conversation_history[{m_pos[q]}]",
            sink,
            self.extra_keys,
        )
        # Provider must be the model's (vocab); both already checked as categories.
        provider_of = {m.long_name: m.provider for m in vocab.LLMS}
        for q, item in enumerate(m_items):
            expected = provider_of.get(item.get("model_name"))
            if (
                expected is not None
                and item.get("model_provider") in vocab.PROVIDERS
                and item["model_provider"] != expected
            ):
                sink.error(
                    m_rows[q],
                    f"conversation_history[{m_pos[q]}].model_provider",
                    item["model_provider"],
                    "provider mismatch",
                    f"{item['model_provider']!r} is not the provider of {item['model_name']!r} (expected {expected!r})",
                )
        dirty = set(sink.first_error)
        # Structure checks on conversations whose items are all well formed.
        u_keep = [q for q, k in enumerate(u_rows) if k not in dirty]
        m_keep = [q for q, k in enumerate(m_rows) if k not in dirty]
        ui = pd.DataFrame(
            {
                "conv": np.asarray([u_rows[q] for q in u_keep], dtype=np.int64),
                "turn": np.asarray([u_items[q]["turn"] for q in u_keep], dtype=np.int64),
                "content": pd.array([u_items[q]["content"] for q in u_keep], dtype=object),
            }
        )
        mi = pd.DataFrame(
            {
                "conv": np.asarray([m_rows[q] for q in m_keep], dtype=np.int64),
                "pos": np.asarray([m_pos[q] for q in m_keep], dtype=np.int64),
                "turn": np.asarray([m_items[q]["turn"] for q in m_keep], dtype=np.int64),
                "within_turn": np.asarray(
                    [m_items[q]["within_turn_id"] for q in m_keep], dtype=np.int64
                ),
                "model": pd.array([m_items[q]["model_name"] for q in m_keep], dtype=object),
                "score": np.asarray([m_items[q]["score"] for q in m_keep], dtype=np.int64),
                "chosen": np.asarray([m_items[q]["if_chosen"] for q in m_keep], dtype=bool),
                "content": pd.array([m_items[q]["content"] for q in m_keep], dtype=object),
            }
        )
        candidates = [k for k in conv_rows if k not in dirty]
        self._structure(candidates, ui, mi)
        dirty = set(sink.first_error)
        ok = ~mi["conv"].isin(dirty)
        self.ui = ui[~ui["conv"].isin(dirty)].reset_index(drop=True)
        self.mi = mi[ok].reset_index(drop=True)
        self.history = self.mi[["conv", "turn", "within_turn", "model", "chosen"]]

    def _structure(self, candidates: list[int], ui: pd.DataFrame, mi: pd.DataFrame) -> None:
        rf, sink = self.raw["conversations"], self.sinks["conversations"]
        recs = rf.records
        H = "conversation_history"

        def err(k: int, fld: str, value: Any, rule: str, msg: str) -> None:
            sink.error(int(k), fld, value, rule, msg)

        # Every conversation needs messages.
        has_user = set(ui["conv"].tolist())
        has_model = set(mi["conv"].tolist())
        for k in candidates:
            if k not in has_user and k not in has_model:
                err(k, H, [], "bad structure", "conversation_history has no messages")
        # One participant message per turn.
        n_user = ui.groupby(["conv", "turn"]).size()
        for (k, t), n in n_user[n_user != 1].items():
            err(
                k, H, int(n), "bad structure", f"turn {t} has {n} participant messages (expected 1)"
            )
        # Turns with responses but no message, or a message without responses.
        ukeys = pd.MultiIndex.from_frame(ui[["conv", "turn"]].drop_duplicates())
        mkeys = pd.MultiIndex.from_frame(mi[["conv", "turn"]].drop_duplicates())
        for k, t in mkeys.difference(ukeys):
            err(
                k,
                H,
                int(t),
                "bad structure",
                f"turn {t} has model responses but no participant message",
            )
        for k, t in ukeys.difference(mkeys):
            err(
                k,
                H,
                int(t),
                "bad structure",
                f"turn {t} has a participant message but no model responses",
            )
        # Turns numbered 0..n-1 and conversation_turns = n.
        turns = pd.concat([ui[["conv", "turn"]], mi[["conv", "turn"]]]).drop_duplicates()
        g = turns.groupby("conv")["turn"].agg(["min", "max", "size"])
        for k, row in g[(g["min"] != 0) | (g["max"] != g["size"] - 1)].iterrows():
            found = sorted(turns.loc[turns["conv"] == k, "turn"].tolist())
            err(k, H, found, "bad structure", f"turns are not numbered 0..n-1 (found {found})")
        declared = pd.Series({k: recs[k]["conversation_turns"] for k in g.index}, dtype="int64")
        mismatch = g["size"] != declared.reindex(g.index)
        for k in g.index[mismatch.to_numpy()]:
            err(
                k,
                "conversation_turns",
                recs[k]["conversation_turns"],
                "disagrees with history",
                f"{recs[k]['conversation_turns']!r} but conversation_history has {g.loc[k, 'size']} turns",
            )
        # Responses per turn: 2-4 at the opening, 2 later.
        lo, hi = schema.OPENING_RESPONSES
        n_resp = mi.groupby(["conv", "turn"]).size()
        turn_of = n_resp.index.get_level_values("turn")
        bad_n = ((turn_of == 0) & ((n_resp < lo) | (n_resp > hi))) | (
            (turn_of > 0) & (n_resp != schema.LATER_RESPONSES)
        )
        for (k, t), n in n_resp[bad_n].items():
            want = f"{lo}-{hi}" if t == 0 else str(schema.LATER_RESPONSES)
            err(
                k, H, int(n), "bad structure", f"turn {t} has {n} model responses (expected {want})"
            )
        dup = mi.duplicated(["conv", "turn", "within_turn"], keep="first")
        for _, r in mi[dup].iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].within_turn_id",
                int(r["within_turn"]),
                "bad structure",
                f"within_turn_id {r['within_turn']} occurs twice at turn {r['turn']}",
            )
        late = mi[(mi["turn"] > 0) & (mi["within_turn"] >= schema.LATER_RESPONSES)]
        for _, r in late.iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].within_turn_id",
                int(r["within_turn"]),
                "bad structure",
                f"{r['within_turn']} at turn {r['turn']} (later turns use 0..{schema.LATER_RESPONSES - 1})",
            )
        # Exactly one chosen response at the opening turn.
        opening = mi[mi["turn"] == 0]
        n_chosen = opening.groupby("conv")["chosen"].sum()
        for k, n in n_chosen[n_chosen != 1].items():
            err(
                k,
                H,
                int(n),
                "bad structure",
                f"turn 0 has {n} responses marked if_chosen (expected exactly 1)",
            )
        chosen_model = opening[opening["chosen"]].drop_duplicates("conv").set_index("conv")["model"]
        later = mi[mi["turn"] > 0]
        expected = later["conv"].map(chosen_model)
        wrong = later[expected.notna() & (later["model"] != expected)]
        for _, r in wrong.drop_duplicates(["conv", "turn"]).iterrows():
            err(
                r["conv"],
                f"{H}[{r['pos']}].model_name",
                r["model"],
                "bad structure",
                f"{r['model']!r} answers turn {r['turn']} but the turn-0 choice was {chosen_model[r['conv']]!r}",
            )
        # opening_prompt is the turn-0 participant message.
        first = ui[ui["turn"] == 0].drop_duplicates("conv")
        for k, content in zip(first["conv"].tolist(), first["content"].tolist(), strict=True):
            prompt = recs[k]["opening_prompt"]
            if prompt != content:
                err(
                    k,
                    "opening_prompt",
                    prompt,
                    "disagrees with history",
                    f"{_short(prompt)} differs from the turn-0 message {_short(content)}",
                )
        # --- warnings (soft) ---
        top = opening.groupby("conv")["score"].max()
        ch = opening[opening["chosen"]].set_index("conv")["score"]
        low = ch[ch < top.reindex(ch.index)]
        for k, s in low.items():
            sink.warning(
                int(k),
                H,
                int(s),
                "chosen not top score",
                f"the turn-0 response marked if_chosen scores {s}, below the turn's top score {top[k]}",
            )
        if len(later):
            lg = later.groupby(["conv", "turn"]).agg(
                n_chosen=("chosen", "sum"), n_text=("content", "nunique"), n=("content", "size")
            )
            lg = lg[lg["n"] == 2]
            soft = (
                (
                    lg["n_chosen"] == 0,
                    "no choice at later turn",
                    "neither response is marked if_chosen",
                ),
                (
                    (lg["n_chosen"] == 2) & (lg["n_text"] == 2),
                    "two choices at later turn",
                    "both responses are marked if_chosen but their texts differ",
                ),
                (
                    (lg["n_chosen"] == 1) & (lg["n_text"] == 1),
                    "one choice for identical texts",
                    "the two responses are identical but only one is marked if_chosen",
                ),
            )
            for mask, rule, what in soft:
                for k, t in lg.index[mask.to_numpy()]:
                    sink.warning(int(k), H, int(t), rule, f"turn {t}: {what}")
