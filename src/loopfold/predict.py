"""Predictor: sequences -> CDR loop torsions, confidence and backbone coordinates.

The shipped model lives in ``loopfold/weights`` (``model.safetensors``,
``config.json``, ``training_loops.csv``: the id, CDR and sequence of every
training loop, so any query can be checked for leakage). Loops are cut with
the model's CDR definition and stems; a query loop >= 90% identical to a
training loop of the same CDR is flagged ``seen_in_training``.

The conformation written is the training loop (template) of the same CDR and
length that the network finds most probable (see :mod:`loopfold.model.templates`);
``template`` names it. Confidence per residue is the network's probability of
the Ramachandran bin of the output (phi, psi); ``docs/model.md`` gives its
measured reliability.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold import __version__
from loopfold.constants import CDRS
from loopfold.data.identity import max_identity
from loopfold.errors import CheckpointError, InvalidFile, InvalidSequence, NumberingError
from loopfold.io.fasta import AntibodyInput, antibody_chains, clean_sequence
from loopfold.model.checkpoint import CONFIG, load_model
from loopfold.model.config import check_run_info
from loopfold.model.decode import run_network
from loopfold.model.features import Batch, batch_from_arrays, batch_from_frame, encode_window
from loopfold.model.losses import nearest_bins
from loopfold.model.templates import choose_conformations, load_templates, log_probs
from loopfold.numbering.anarci import NumberedDomain, number_sequence
from loopfold.numbering.cdr import cdr_bounds, locate_cdr
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.rebuild import rebuild_backbone

SCHEMA_VERSION = "1"
SHIPPED = Path(__file__).resolve().parent / "weights"
SEEN_IDENTITY = 0.9
MANIFEST = "training_loops.csv"


@dataclass(frozen=True)
class LoopQuery:
    """One loop window to predict."""

    cdr: str
    chain: str
    sequence: str
    stem_n: str
    stem_c: str
    start: int | None


def _coords(xyz: np.ndarray) -> dict[str, list]:
    """``{"N": [[x, y, z], ...], "CA": ..., "C": ..., "O": ...}`` rounded to 0.001 Å."""
    return dict(zip(("N", "CA", "C", "O"), np.round(xyz, 3).transpose(1, 0, 2).tolist(), strict=True))


def _sample(probability: float, template: str | None, angles: np.ndarray, xyz: np.ndarray) -> dict:
    """One entry of a loop's ``samples`` list."""
    return {"probability": round(float(probability), 4), "template": template, "phi": _nulls(angles[:, 0], 1),
            "psi": _nulls(angles[:, 1], 1), "omega": _nulls(angles[:, 2], 1), "coords": _coords(xyz)}  # fmt: skip


def _nulls(values: np.ndarray, ndigits: int = 2) -> list[float | None]:
    """Rounded values as a list, None where a value is NaN (undefined)."""
    return [None if v != v else v for v in np.round(values, ndigits).tolist()]


class Predictor:
    """A trained model ready to predict (the shipped one by default)."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else SHIPPED
        self.model, self.cfg, self.info = load_model(self.run_dir)
        self.templates = load_templates(self.run_dir)
        try:
            check_run_info(self.info, self.cfg, str(self.run_dir / CONFIG),
                           self.templates.definition if self.templates is not None else None)  # fmt: skip
        except InvalidFile as exc:
            raise CheckpointError(str(exc)) from None
        self.definition = self.info.get("definition", "north")
        self.stems = int(self.info.get("stems", 3))
        self.default_stems: dict[str, list[str]] = self.info.get("default_stems", {})
        self.name = self.info.get("name", f"loopfold-{self.cfg.model}")
        self.temperature = float(self.info.get("bin_temperature", 1.0))
        self.training: dict[str, list[str]] = {}
        manifest = self.run_dir / MANIFEST
        if manifest.is_file():
            try:
                with open(manifest, newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        self.training.setdefault(row["cdr"], []).append(row["sequence"])
            except (KeyError, TypeError, UnicodeDecodeError, csv.Error):
                raise CheckpointError(f"{manifest}: not a training-loop list (columns cdr, sequence)") from None

    # --- locating loops -------------------------------------------------
    def loop_query(self, sequence: str, cdr: str, stems: tuple[str, str] | None = None) -> LoopQuery:
        """A query for a loop sequence alone; stems default to the CDR's most common training stems."""
        if cdr not in CDRS:
            raise InvalidSequence(f"--cdr {cdr!r}: expected one of {', '.join(CDRS)}")
        seq = clean_sequence(sequence, "loop")
        if stems is None:
            default = self.default_stems.get(cdr, ["", ""])
            stems = (default[0], default[1])
        sn, sc = (clean_sequence(s, "stem") if s else "" for s in stems)
        self._check_length(cdr, seq)
        return LoopQuery(cdr, cdr[0], seq, sn, sc, None)

    def standard_stems(self, q: LoopQuery) -> tuple[str, str, list[str]]:
        """The N- and C-stems the model reads (as many residues as its typical stems for the CDR, else
        ``self.stems`` each side) and notes on changes.

        Templates are windows of exactly that many stems, so a loop is matched with
        templates of its own length. Longer stems keep the residues next to the loop;
        shorter or missing ones are padded with the CDR's most common training stem.

        Raises:
            InvalidSequence: stems are short and the model has no typical stems for the CDR.
        """
        (sn, sc), notes = (q.stem_n, q.stem_c), []
        default = self.default_stems.get(q.cdr)
        dn, dc = (default[0], default[1]) if default else ("", "")
        kn, kc = (len(dn), len(dc)) if default else (self.stems, self.stems)
        if len(sn) > kn:
            notes.append(f"N-stem {sn} has more than {kn} residues: the {kn} next to the loop were used")
            sn = sn[len(sn) - kn :]
        if len(sc) > kc:
            notes.append(f"C-stem {sc} has more than {kc} residues: the {kc} next to the loop were used")
            sc = sc[:kc]
        if (len(sn) < kn or len(sc) < kc) and not default:
            raise InvalidSequence(f"{q.cdr} {q.sequence}: needs {kn} + {kc} stem residues and the model has no "
                                  f"typical {q.cdr} stems to pad with")  # fmt: skip
        if len(sn) < kn:
            notes.append(f"N-stem has {len(sn)} of {kn} residues: padded with {dn[: kn - len(sn)]} from the "
                         f"most common {q.cdr} stem {dn}")  # fmt: skip
            sn = dn[: kn - len(sn)] + sn
        if len(sc) < kc:
            notes.append(f"C-stem has {len(sc)} of {kc} residues: padded with {dc[len(sc) :]} from the "
                         f"most common {q.cdr} stem {dc}")  # fmt: skip
            sc = sc + dc[len(sc) :]
        return sn, sc, notes

    def _check_length(self, what: str, loop: str) -> None:
        stems = self.default_stems.get(what)
        window = loop + ("".join(stems) if stems else "x" * (2 * self.stems))  # the stems the model reads
        if len(window) > self.cfg.max_len:
            raise InvalidSequence(
                f"{what}: window of {len(window)} residues (loop + stems) exceeds the model's limit of "
                f"{self.cfg.max_len} (loops up to {self.cfg.max_len - 2 * self.stems} residues)"
            )

    def chain_queries(
        self, sequence: str, domains: list[NumberedDomain], missing: list[dict] | None = None
    ) -> list[LoopQuery]:
        """The CDR loops of a numbered chain sequence; CDRs that cannot be cut are appended to
        ``missing`` as ``{"cdr": ..., "reason": ...}``."""
        out = []
        for dom in domains:
            numbers = [p for p, _ in dom.positions]
            for cdr in (c for c in CDRS if c[0] == dom.chain_type):
                sl = locate_cdr(dom.indices, numbers, cdr, self.definition, dom.scheme)
                if sl is None:
                    if missing is not None:
                        missing.append({"cdr": cdr, "reason": _why_missing(cdr, numbers, self.definition)})
                    continue
                lo, hi = max(0, sl.start - self.stems), min(len(sequence), sl.stop + self.stems)
                self._check_length(cdr, sequence[sl.start : sl.stop])
                out.append(LoopQuery(cdr, dom.chain_type, sequence[sl.start : sl.stop], sequence[lo : sl.start],
                                     sequence[sl.stop : hi], sl.start))  # fmt: skip
        return out

    def antibody_queries(
        self, ab: AntibodyInput, numbered: dict | None = None, missing: list[dict] | None = None
    ) -> list[LoopQuery]:
        """Number an antibody's chains (or take ``numbered``: label -> domains) and cut its loops.

        CDRs that cannot be cut, and domains of the other chain type inside a labelled
        chain (an scFv given as ``heavy``), are appended to ``missing`` with the reason.

        Raises:
            NumberingError: a given chain holds no antibody domain, or a labelled chain has the other type.
        """
        queries: list[LoopQuery] = []
        for label, seq in antibody_chains(ab):
            seq = clean_sequence(seq, f"{ab.name} {label}")
            if numbered is not None:
                doms = numbered[label]
                if isinstance(doms, NumberingError):
                    raise doms
            else:
                doms = number_sequence(seq, name=f"{ab.name} {label}")
            want = {"heavy": "H", "light": "L"}.get(label)
            if want is not None:
                other = [d for d in doms if d.chain_type != want]
                doms = [d for d in doms if d.chain_type == want]
                if not doms:
                    raise NumberingError(f"{ab.name} {label}: no {label} chain variable domain found")
                if other and missing is not None:
                    missing.extend({"cdr": c, "reason": f"the {label} sequence also holds a {c[0]} domain (an "
                                    "scFv?): give it as an unlabelled record to predict both"}
                                   for c in CDRS if c[0] == other[0].chain_type)  # fmt: skip
            try:
                queries.extend(self.chain_queries(seq, doms, missing))
            except InvalidSequence as exc:
                raise InvalidSequence(f"{ab.name} {label}: {exc}") from None
        return queries

    # --- prediction -------------------------------------------------------
    def predict_queries(
        self,
        queries: list[LoopQuery],
        samples: int = 0,
        place: Callable[[int, LoopQuery, np.ndarray], tuple[np.ndarray, dict]] | None = None,
    ) -> list[dict]:
        """JSON-ready loop results for many queries at once (one network call).

        ``place(i, query, window_xyz)`` may move a predicted window into a structure
        (returning new window coordinates and extra JSON fields); torsions are then
        measured from the placed coordinates.
        """
        if not queries:
            return []
        L = self.cfg.max_len
        std = [self.standard_stems(q) for q in queries]  # the model's stem count each side
        feats = np.stack([encode_window(sn + q.sequence + sc, len(sn), len(sc), q.cdr, L)
                          for q, (sn, sc, _) in zip(queries, std, strict=True)])  # fmt: skip
        lengths = np.array([len(sn) + len(q.sequence) + len(sc) for q, (sn, sc, _) in zip(queries, std, strict=True)])
        nan = np.full((len(queries), L, 3), np.nan, dtype=np.float32)
        batch = batch_from_arrays(feats, lengths, nan, np.zeros((len(queries), L), bool))
        pred, chosen, chosen_xyz, sources = self.conformations(
            batch, [q.cdr for q in queries], [q.sequence for q in queries]
        )
        confidence = self.confidence(pred, chosen, lengths)
        identity = self._train_identity(queries)
        results = []
        for i, q in enumerate(queries):
            n = lengths[i]
            ang = chosen[i, :n]
            xyz = chosen_xyz[i] if chosen_xyz[i] is not None else rebuild_backbone(ang)
            sn, sc, notes = std[i]
            a, b = len(sn), n - len(sc)
            extra: dict = {"warnings": notes} if notes else {}
            if place is not None:  # place sees the query's own residues only (padding cut off)
                pn, pc = len(sn) - len(q.stem_n), len(sc) - len(q.stem_c)
                xyz = xyz.copy()
                xyz[pn : n - pc], placed = place(i, q, xyz[pn : n - pc])
                extra.update(placed)
                ang = backbone_torsions(xyz)
            angles = ang.copy()
            ident = identity[i]
            loop = {
                "cdr": q.cdr, "chain": q.chain, "definition": self.definition, "sequence": q.sequence,
                "stem_n": q.stem_n, "stem_c": q.stem_c, "start": q.start,
                "phi": _nulls(angles[a:b, 0], 1), "psi": _nulls(angles[a:b, 1], 1),
                "omega": _nulls(angles[a:b, 2], 1),
                "confidence": _nulls(confidence[i, a:b], 3),
                "coords": _coords(xyz[a:b]),
                "seen_in_training": bool(ident is not None and ident >= SEEN_IDENTITY),
                "max_training_identity": None if ident is None else round(ident, 3),
                "template": sources[i],
                **extra,
            }  # fmt: skip
            if samples > 0 and "bin_probs" in pred:
                loop["samples"] = self._samples(pred, i, q, n, a, b, samples)
            results.append(loop)
        return results

    def conformations(
        self, batch: Batch, cdrs: list[str], sequences: list[str]
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[np.ndarray | None], list[str | None]]:
        """Network outputs, and per window the chosen torsions ``[B, L, 3]``, coordinates (None
        where no template fits) and template ids."""
        pred = run_network(self.model, batch, temperature=self.temperature)
        lengths = batch.lengths.numpy()
        chosen, xyz, sources = choose_conformations(
            pred, cdrs, sequences, lengths, self.templates, self.cfg.identity_weight
        )
        return pred, chosen, xyz, sources

    def predict_frame(
        self, df: pd.DataFrame
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[np.ndarray | None], list[str | None]]:
        """:meth:`conformations` for dataset rows (evaluation and reports use this path)."""
        return self.conformations(batch_from_frame(df, self.cfg.max_len), df["cdr"].tolist(), df["sequence"].tolist())

    @staticmethod
    def confidence(pred: dict, angles: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``[B, L]`` the model's probability of the (phi, psi) bin of each output residue (0 past ``lengths``)."""
        if "bin_probs" not in pred:
            return pred["confidence"]
        c = pred["bin_centers"]
        out = np.zeros(angles.shape[:2], dtype=np.float32)
        inside = np.arange(angles.shape[1])[None, :] < np.asarray(lengths)[:, None]
        real = inside & np.isfinite(angles[..., 0]) & np.isfinite(angles[..., 1])
        bins = nearest_bins(angles[real, 0], angles[real, 1], c)  # [M] residues only, no padding
        out[real] = pred["bin_probs"][real][np.arange(len(bins)), bins]
        return out

    def _train_identity(self, queries: list[LoopQuery]) -> list[float | None]:
        """Each query's highest identity to a training loop of its CDR (None: no training loops of it)."""
        out: list[float | None] = [None] * len(queries)
        by_cdr: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            by_cdr.setdefault(q.cdr, []).append(i)
        for cdr, idx in by_cdr.items():
            ref = self.training.get(cdr)
            if ref:
                for i, v in zip(idx, max_identity([queries[i].sequence for i in idx], ref), strict=True):
                    out[i] = float(v)
        return out

    def _samples(self, pred: dict, i: int, q: LoopQuery, n: int, a: int, b: int, k: int) -> list[dict]:
        """Up to k distinct conformations with probabilities (softmax of their scores among the k).

        With a template library: the k most probable distinct templates; without
        one: draws from the per-residue bin probabilities, the mode first.
        """
        if self.templates is not None:
            logp, cis_logp = log_probs(pred)
            cis = None if cis_logp is None else cis_logp[i, :n]
            ranked = self.templates.rank(q.cdr, q.sequence, logp[i, :n], pred["bin_centers"], cis,
                                         self.cfg.identity_weight, k)  # fmt: skip
            if ranked:
                scores = np.array([r[3] for r in ranked])
                w = np.exp(scores - scores.max())
                w /= w.sum()
                return [_sample(p, src, t[a:b], xyz[a:b]) for (t, xyz, src, _), p in zip(ranked, w, strict=True)]
        probs, centers = pred["bin_probs"][i, :n], pred["bin_centers"]
        rng = np.random.default_rng(0)
        picks = [probs.argmax(-1)]
        seen = {tuple(picks[0])}
        for _ in range(50 * k):
            if len(picks) >= k:
                break
            draw = np.array([rng.choice(len(p), p=p / p.sum()) for p in probs])
            if tuple(draw) not in seen:
                seen.add(tuple(draw))
                picks.append(draw)
        logp_s = np.array([np.log(probs[np.arange(n), p] + 1e-12).sum() for p in picks])
        w = np.exp(logp_s - logp_s.max())
        w /= w.sum()
        out = []
        for p, weight in zip(picks, w, strict=True):
            ang = pred["mode"][i, :n].copy()
            ang[:, 0], ang[:, 1] = centers[p, 0], centers[p, 1]
            xyz = rebuild_backbone(ang)
            out.append(_sample(weight, None, ang[a:b], xyz[a:b]))
        return out

    def document(self, results: list[dict]) -> dict:
        """The JSON document around results."""
        return {"schema_version": SCHEMA_VERSION, "model": self.model_info(), "results": results}

    def model_info(self) -> dict:
        """Name, loopfold version, architecture, definition."""
        return {"name": self.name, "loopfold_version": __version__, "architecture": self.cfg.model,
                "definition": self.definition, "stems": self.stems}  # fmt: skip


def _why_missing(cdr: str, numbers: list[int], definition: str) -> str:
    """Why a CDR could not be cut from a numbered domain, in words."""
    lo, hi = cdr_bounds(cdr, definition, "imgt")
    if numbers[-1] <= hi:
        return f"the sequence ends at IMGT position {numbers[-1]}, before the end of {cdr} ({hi}) and its anchor"
    if numbers[0] >= lo:
        return f"the sequence starts at IMGT position {numbers[0]}, after the start of {cdr} ({lo}) or its anchor"
    return f"{cdr} is not contiguous in the numbering"
