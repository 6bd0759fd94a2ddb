"""Checks of utterances against their conversations: agreement, coverage, numbering.

A mixin of the release checker (:mod:`prism_stats.data.validate`): every utterance must
equal its ``conversation_history`` entry (turn, slot, model, score, ``if_chosen``,
texts, user, conversation type, balanced flag), every history response must have its
utterance and ``interaction_id`` must map one-to-one onto ``(conversation, turn)``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .fields import _columns, _ids, _Sink, _str_or_none
from .io import RawFile
from .issues import _short


class _UtteranceChecks:
    """The release checker's checks of utterances against their conversations."""

    raw: dict[str, RawFile]
    sinks: dict[str, _Sink]
    extra_keys: Counter[tuple[str, str]]
    history: pd.DataFrame

    def utterances(self, survey_ids: set[str], conv_ids: set[str]) -> None:
        rf, sink = self.raw["utterances"], self.sinks["utterances"]
        crf = self.raw["conversations"]
        recs = rf.records
        n = len(recs)
        cid_raw, uid_raw, turn_raw, wid_raw, iid_raw = _columns(
            recs, ["conversation_id", "user_id", "turn", "within_turn_id", "interaction_id"]
        )
        cid = _str_or_none(cid_raw)
        uid = _str_or_none(uid_raw)
        # Rows with field errors take no part in the key checks below (their values
        # may be the very thing that is wrong).
        field_bad = set(sink.first_error)
        turn = [
            v if type(v) is int and k not in field_bad else None for k, v in enumerate(turn_raw)
        ]
        wid = [v if type(v) is int and k not in field_bad else None for k, v in enumerate(wid_raw)]
        # References (scan rows only when some id is unknown).
        unknown_c = set(cid) - conv_ids - {None}
        unknown_u = set(uid) - survey_ids - {None}
        if unknown_c or unknown_u:
            for k in range(n):
                if cid[k] in unknown_c:
                    sink.error(
                        k,
                        "conversation_id",
                        cid[k],
                        "unknown conversation",
                        f"{cid[k]!r} does not match any conversation_id in conversations.jsonl",
                    )
                if uid[k] in unknown_u:
                    sink.error(
                        k,
                        "user_id",
                        uid[k],
                        "unknown participant",
                        f"{uid[k]!r} does not match any user_id in survey.jsonl",
                    )
        # The same response twice.
        keyed = pd.DataFrame(
            {"k": np.arange(n), "cid": pd.array(cid, dtype=object), "turn": turn, "wid": wid}
        ).dropna()
        dup = keyed.duplicated(["cid", "turn", "wid"], keep=False)
        lines = np.asarray(rf.lines)
        for (_c, _t, _w), grp in keyed[dup].groupby(["cid", "turn", "wid"]):
            where = ", ".join(str(x) for x in lines[grp["k"].to_numpy()][:10])
            for k in grp["k"].tolist():
                sink.error(
                    k,
                    "within_turn_id",
                    int(_w),
                    "duplicate response",
                    f"conversation {_c!r} turn {int(_t)} within_turn_id {int(_w)} occurs more than once (lines {where})",
                )
        # interaction_id <-> (conversation, turn) one-to-one.
        iid = _str_or_none(iid_raw)
        ia = pd.DataFrame(
            {
                "k": np.arange(n),
                "iid": pd.array(iid, dtype=object),
                "cid": pd.array(cid, dtype=object),
                "turn": turn,
            }
        ).dropna()
        if len(ia):
            pairs = ia.drop_duplicates(["iid", "cid", "turn"])
            multi_i = pairs.groupby("iid").size()
            multi_i = set(multi_i[multi_i > 1].index)
            multi_t = pairs.groupby(["cid", "turn"]).size()
            multi_t = set(multi_t[multi_t > 1].index)
            suspects = (
                ia[
                    ia["iid"].isin(multi_i)
                    | pd.MultiIndex.from_frame(ia[["cid", "turn"]]).isin(list(multi_t))
                ]
                if (multi_i or multi_t)
                else ia.iloc[:0]
            )
            for k, i, c, t in suspects.itertuples(index=False):
                if i in multi_i:
                    sink.error(
                        k,
                        "interaction_id",
                        i,
                        "inconsistent interaction",
                        f"{i!r} is used for more than one (conversation, turn)",
                    )
                elif (c, t) in multi_t:
                    sink.error(
                        k,
                        "interaction_id",
                        i,
                        "inconsistent interaction",
                        f"{i!r}: conversation {c!r} turn {int(t)} has more than one interaction_id",
                    )
            self._interaction_numbering(pairs)
        # Agreement with the conversation (only clean utterances and clean conversations).
        cfirst = self.sinks["conversations"].first_error
        conv_ids_col = _ids(crf.records, "conversation_id")
        counts = Counter(v for v in conv_ids_col if type(v) is str)
        conv_index = {
            v: k
            for k, v in enumerate(conv_ids_col)
            if type(v) is str and counts[v] == 1 and k not in cfirst
        }
        first = sink.first_error
        clean = [k for k in range(n) if k not in first and cid[k] in conv_index]
        if not clean:
            self.utt_keys = keyed
            return
        crec = crf.records
        conv_k = np.asarray([conv_index[cid[k]] for k in clean], dtype=np.int64)
        for name in ("user_id", "conversation_type", "included_in_balanced_subset"):
            mine = np.asarray([recs[k][name] for k in clean], dtype=object)
            theirs = np.asarray([crec[ck][name] for ck in conv_k.tolist()], dtype=object)
            for p in np.flatnonzero(mine != theirs).tolist():
                k = clean[p]
                sink.error(
                    k,
                    name,
                    mine[p],
                    "disagrees with conversation",
                    f"{_short(mine[p])} differs from conversation {cid[k]!r} ({_short(theirs[p])})",
                )
        uf = pd.DataFrame(
            {
                "k": np.asarray(clean, dtype=np.int64),
                "conv": conv_k,
                "turn": np.asarray([recs[k]["turn"] for k in clean], dtype=np.int64),
                "within_turn": np.asarray(
                    [recs[k]["within_turn_id"] for k in clean], dtype=np.int64
                ),
            }
        )
        mi = self.mi
        on = ["conv", "turn", "within_turn"]
        merged = uf.merge(mi[on], on=on, how="left", indicator=True)
        H = "conversation_history"
        for r in merged[merged["_merge"] == "left_only"].itertuples(index=False):
            sink.error(
                r.k,
                "within_turn_id",
                int(r.within_turn),
                "not in history",
                f"conversation {cid[r.k]!r} has no response at turn {r.turn}, "
                f"within_turn_id {r.within_turn} in its {H}",
            )
        both = uf.merge(mi, on=on, how="inner")
        ks = both["k"].tolist()
        for fld, col in (
            ("model_name", "model"),
            ("score", "score"),
            ("if_chosen", "chosen"),
            ("model_response", "content"),
        ):
            mine = np.asarray([recs[k][fld] for k in ks], dtype=object)
            theirs = np.asarray(both[col].tolist(), dtype=object)
            for p in np.flatnonzero(mine != theirs).tolist():
                k = ks[p]
                sink.error(
                    k,
                    fld,
                    mine[p],
                    "disagrees with history",
                    f"{_short(mine[p])} disagrees with the {H} of {cid[k]!r} (turn {recs[k]['turn']}, "
                    f"within_turn_id {recs[k]['within_turn_id']}: {_short(theirs[p])})",
                )
        prompts = uf.merge(
            self.ui.drop_duplicates(["conv", "turn"]), on=["conv", "turn"], how="inner"
        )
        ks = prompts["k"].tolist()
        mine = np.asarray([recs[k]["user_prompt"] for k in ks], dtype=object)
        theirs = np.asarray(prompts["content"].tolist(), dtype=object)
        for p in np.flatnonzero(mine != theirs).tolist():
            k = ks[p]
            sink.error(
                k,
                "user_prompt",
                mine[p],
                "disagrees with history",
                f"{_short(mine[p])} disagrees with the turn-{recs[k]['turn']} message of "
                f"{cid[k]!r} ({_short(theirs[p])})",
            )
        self.utt_keys = keyed

    def _interaction_numbering(self, pairs: pd.DataFrame) -> None:
        """Warn when interaction ids do not follow the release's ``int{k}`` numbering.

        The release numbers the (conversation, turn) groups in the lexicographic order of
        the conversation id *string* (so ``c10`` comes before ``c2``) and numeric turn.
        """
        p = pairs.drop_duplicates(["cid", "turn"]).sort_values(["cid", "turn"], kind="stable")
        expected = [f"int{i}" for i in range(len(p))]
        off = p["iid"].to_numpy() != np.asarray(expected, dtype=object)
        if off.any():
            r = p[off].iloc[0]
            self.sinks["utterances"].warning(
                int(r["k"]),
                "interaction_id",
                r["iid"],
                "interaction numbering",
                f"{int(off.sum()):,} interaction id(s) do not follow the release numbering "
                f"(int<k> over conversation ids sorted as strings, then turns); first: {r['iid']!r} "
                f"for conversation {r['cid']!r} turn {int(r['turn'])}",
            )

    def coverage(self) -> None:
        """Every history response of a clean conversation has its utterance row.

        Skipped for an empty utterances file (that error is reported once) and for
        conversations named by an utterance row with an error of its own, or by an
        unparseable line: that row is the error (and is excluded in lenient mode); which
        history response it was meant to be cannot be told.
        """
        sink = self.sinks["conversations"]
        recs = self.raw["conversations"].records
        urf = self.raw["utterances"]
        if not len(self.mi) or urf.n_lines == 0:
            return
        broken = {s["conversation_id"] for s in urf.salvaged if "conversation_id" in s}
        broken |= {
            urf.records[k].get("conversation_id") for k in self.sinks["utterances"].first_error
        }
        unknown_broken = any("conversation_id" not in s for s in urf.salvaged)
        if unknown_broken:
            return
        cids = pd.Series(
            [recs[k].get("conversation_id") for k in self.mi["conv"].tolist()], dtype=object
        )
        hist = pd.DataFrame(
            {
                "cid": cids.to_numpy(),
                "turn": self.mi["turn"].to_numpy(),
                "wid": self.mi["within_turn"].to_numpy(),
                "conv": self.mi["conv"].to_numpy(),
                "pos": self.mi["pos"].to_numpy(),
                "model": self.mi["model"].to_numpy(),
            }
        )
        have = (
            self.utt_keys[["cid", "turn", "wid"]]
            .drop_duplicates()
            .astype({"turn": "int64", "wid": "int64"})
        )
        hist = hist[~hist["cid"].isin(broken)]
        m = hist.merge(have, on=["cid", "turn", "wid"], how="left", indicator=True)
        for r in m[m["_merge"] == "left_only"].itertuples(index=False):
            sink.error(
                r.conv,
                f"conversation_history[{r.pos}]",
                r.model,
                "missing utterance",
                f"the response of {r.model!r} at turn {r.turn}, within_turn_id {r.wid} has no row in utterances.jsonl",
            )
