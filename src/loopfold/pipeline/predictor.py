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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from loopfold import __version__
from loopfold.constants import CDRS
from loopfold.data.identity import reference_identity
from loopfold.errors import CheckpointError, InvalidFile, InvalidSequence, LoopTooLong, NumberingError
from loopfold.fv.ranking import RANKER_FILE, load_ranker
from loopfold.fv.template_frames import FRAMES_FILE, load_frames
from loopfold.io.fasta import AntibodyInput, antibody_chains, clean_sequence
from loopfold.model.checkpoint import CONFIG, load_model
from loopfold.model.context import NumberedChain, WindowContext, context_tokens, numbered_chain
from loopfold.model.decode import bin_confidence, run_network
from loopfold.model.ensemble import load_members, member_weights
from loopfold.model.error_model import ErrorModel, loops_features
from loopfold.model.features import Inputs, batch_from_frame, encode_window, query_inputs
from loopfold.model.fv_inputs import frame_batch, rebuild_predicted, with_fv
from loopfold.model.run_info import RunInfo
from loopfold.model.templates import Candidates, choose_conformations, load_templates, nanobody_choice
from loopfold.numbering.anarci import NumberedDomain, number_sequence
from loopfold.numbering.cdr import locate_cdr, why_missing
from loopfold.pipeline.results import LoopArrays, LoopResult, Sample
from loopfold.pipeline.samples import loop_samples
from loopfold.structure.geometry import backbone_torsions
from loopfold.structure.planar import planarize
from loopfold.structure.rebuild import rebuild_backbone

SCHEMA_VERSION = "2"  # 2: fv.chains[].error became error_frame; samples placed in the Fv
SHIPPED = Path(__file__).resolve().parents[1] / "weights"
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
    #: the loop's numbered chain and the whole Fv's context tokens (FvNet reads them; None for a lone loop)
    numbered: NumberedChain | None = field(default=None, compare=False, repr=False)
    context: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: the loop belongs to a nanobody (its templates may come from nanobody loops: ``info.nanobody_cdrs``)
    nanobody: bool = False
    #: the loop residues' IMGT numbers with insertion code (``"111A"``; None for a lone loop)
    residue_ids: tuple[str, ...] | None = field(default=None, compare=False)


class Predictor:
    """A trained model ready to predict (the shipped one by default)."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else SHIPPED
        self.model, self.cfg, raw = load_model(self.run_dir)
        self.templates = load_templates(self.run_dir)
        #: each template's own framework, to place its loop in an Fv (None: loops placed by their stems)
        self.template_frames = load_frames(self.run_dir / FRAMES_FILE)
        #: chooses each loop among its candidates in an Fv (None: the network's first choice is written)
        self.ranker = load_ranker(self.run_dir / RANKER_FILE)
        #: never choose a template this identical to the loop (a training loop predicted as if new)
        self.exclude_identity: float | None = None
        try:
            self.info = RunInfo.parse(raw, self.cfg, str(self.run_dir / CONFIG),
                                      self.templates.definition if self.templates is not None else None)  # fmt: skip
        except InvalidFile as exc:
            raise CheckpointError(str(exc)) from None
        self.error_model: ErrorModel | None = self.info.error_model
        self.members = load_members(self.run_dir, self.cfg, self.info)
        #: the loops written are template conformations (not an FvNet's own rebuilt structure): only
        #: then do a template's frame and the ranker's candidates describe them
        self.writes_templates = not (self.cfg.model == "fvnet" and self.info.output in (None, "structure"))
        self.reads_fv = any(getattr(m, "reads_fv", False) for m in [self.model, *(x.model for x in self.members)])
        self.definition, self.stems, self.name = self.info.definition, self.info.stems, self.info.name
        self.default_stems = self.info.default_stems
        self.temperature = self.info.bin_temperature
        #: CDRs whose nanobody loops choose among nanobody templates only (tuned on validation loops)
        self.nanobody_cdrs = set(self.info.nanobody_cdrs)
        nb_ids = set(self.info.nanobody_templates)
        self.nanobody_templates = self.templates.subset(nb_ids) if self.templates is not None and nb_ids else None
        #: per CDR, the template loops' sequences (what :meth:`template_identity` compares with)
        self.template_sequences: dict[str, list[str]] = {}
        for (cdr, _), group in (self.templates.groups.items() if self.templates is not None else ()):
            self.template_sequences.setdefault(cdr, []).extend(group.sequences)
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
            raise LoopTooLong(
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
                        missing.append({"cdr": cdr, "reason": why_missing(cdr, numbers, self.definition)})
                    continue
                lo, hi = max(0, sl.start - self.stems), min(len(sequence), sl.stop + self.stems)
                self._check_length(cdr, sequence[sl.start : sl.stop])
                imgt = dict(zip(dom.indices, (f"{n}{c.strip()}" for n, c in dom.positions), strict=True))
                out.append(LoopQuery(cdr, dom.chain_type, sequence[sl.start : sl.stop], sequence[lo : sl.start],
                                     sequence[sl.stop : hi], sl.start,
                                     residue_ids=tuple(imgt.get(i, "") for i in range(sl.start, sl.stop))))  # fmt: skip
        return out

    def antibody_queries(
        self, ab: AntibodyInput, numbered: dict | None = None, missing: list[dict] | None = None,
        read: bool = False,
    ) -> list[LoopQuery]:
        """Number an antibody's chains (or take ``numbered``: label -> domains) and cut its loops.
        ``read``: the sequences were read from a structure (``X`` marks a non-standard residue there).

        CDRs that cannot be cut, and domains of the other chain type inside a labelled
        chain (an scFv given as ``heavy``), are appended to ``missing`` with the reason.

        Raises:
            NumberingError: a given chain holds no antibody domain, or a labelled chain has the other type.
        """
        queries: list[LoopQuery] = []
        chains: dict[str, NumberedChain] = {}
        for label, seq in antibody_chains(ab):
            seq = seq if read else clean_sequence(seq, f"{ab.name} {label}")
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
            for d in doms:
                chains.setdefault(d.chain_type, numbered_chain(seq, d))
            try:
                queries.extend(self.chain_queries(seq, doms, missing))
            except InvalidSequence as exc:
                raise type(exc)(f"{ab.name} {label}: {exc}") from None  # its kind kept (LoopTooLong)
        tokens = context_tokens(list(chains.values()))
        return [replace(q, numbered=chains.get(q.chain), context=tokens) for q in queries]

    # --- prediction -------------------------------------------------------
    def predict_queries(
        self,
        queries: list[LoopQuery],
        samples: int = 0,
        place: Callable[[int, LoopQuery, np.ndarray], tuple[np.ndarray, float | None]] | None = None,
        sample_windows: dict[int, list[np.ndarray]] | None = None,
        top_k: int = 0,
        top_k_cdrs: set[str] | None = None,
    ) -> list[LoopResult]:
        """Typed loop results for many queries at once (one network call), values before rounding
        (:func:`~loopfold.pipeline.results.loops_json` writes them).

        ``place(i, query, window_xyz)`` may move a predicted window into a structure
        (returning new window coordinates and the closure's anchor RMSD, or None); torsions are then
        measured from the placed coordinates. ``sample_windows`` receives, per query with samples,
        each sample's window over the query's own stems (as ``place`` sees the loop's), to be placed
        like it. ``top_k``: each loop (of ``top_k_cdrs`` when given) keeps its this many best templates
        (``candidates``).
        """
        if not queries:
            return []
        L = self.cfg.max_len
        std = [self.standard_stems(q) for q in queries]  # the model's stem count each side
        feats = np.stack([encode_window(sn + q.sequence + sc, len(sn), len(sc), q.cdr, L)
                          for q, (sn, sc, _) in zip(queries, std, strict=True)])  # fmt: skip
        lengths = np.array([len(sn) + len(q.sequence) + len(sc) for q, (sn, sc, _) in zip(queries, std, strict=True)])
        batch = query_inputs(feats, lengths)
        cdrs, seqs, names = [q.cdr for q in queries], [q.sequence for q in queries], None
        if self.reads_fv:
            ctx = [None if q.numbered is None or q.start is None  # context: set with numbered (antibody_queries)
                   else WindowContext(cast(np.ndarray, q.context), q.numbered, q.start, len(sn))
                   for q, (sn, _, _) in zip(queries, std, strict=True)]  # fmt: skip
            batch, names = with_fv(batch, cdrs, seqs, self.templates, ctx)
        nanobody = np.array([q.nanobody for q in queries], dtype=bool)
        kept: list[Candidates | None] = []
        pred, chosen, chosen_xyz, sources = self.conformations(batch, cdrs, seqs, names, nanobody, top_k, kept,
                                                               top_k_cdrs)  # fmt: skip
        cands = kept if kept else [None] * len(queries)
        confidence = self.output_confidence(pred, chosen, lengths)
        identity = reference_identity(self.training, cdrs, seqs)
        xyzs = []
        for i, (n, q, (sn, sc, _)) in enumerate(zip(lengths, queries, std, strict=True)):
            # a template's cis bond where the query has no proline (or a twisted one) made planar
            xyz, fixed = planarize(cast(np.ndarray, chosen_xyz[i]) if chosen_xyz[i] is not None
                                   else rebuild_backbone(chosen[i, :n]), sn + q.sequence + sc)  # fmt: skip
            if fixed:  # the angles written are those of the written coordinates
                chosen[i, :n] = np.where(np.isfinite(t := backbone_torsions(xyz)), t, chosen[i, :n])
            xyzs.append(xyz)
        spans = [(len(sn), n - len(sc)) for (sn, sc, _), n in zip(std, lengths, strict=True)]
        errors: list[np.ndarray | None] = [None] * len(queries)
        err_rmsd: list[float | None] = [None] * len(queries)
        if self.error_model is not None:  # every loop residue's predicted error at once
            sizes = np.array([b - a for a, b in spans], dtype=int)
            win = np.repeat(np.arange(len(spans)), sizes)
            res = np.concatenate([np.arange(a, b) for a, b in spans])
            probs = pred["bin_probs"][win, res] if "bin_probs" in pred else None
            err = self.error_model.predict(loops_features(confidence[win, res], probs,
                                                          list(self.template_identity(cdrs, seqs)), cdrs, sizes))
            cut = np.concatenate([[0], np.cumsum(sizes)])
            errors = [err[lo:hi] for lo, hi in zip(cut[:-1], cut[1:], strict=True)]
            err_rmsd = np.sqrt(np.bincount(win, err**2, len(queries)) / np.maximum(sizes, 1)).tolist()
        results = []
        for i, q in enumerate(queries):
            n, xyz, (sn, sc, notes), (a, b) = lengths[i], xyzs[i], std[i], spans[i]
            ang, closure = chosen[i, :n], None
            pn, pc = len(sn) - len(q.stem_n), len(sc) - len(q.stem_c)  # stem padding: not the query's own
            if place is not None:  # place sees the query's own residues only (padding cut off)
                own = xyz[pn : n - pc].copy()
                moved, closure = place(i, q, own)
                if moved is not own:  # unchanged windows keep their torsions (the Fv path closes them later)
                    xyz = xyz.copy()
                    xyz[pn : n - pc] = moved
                    ang = backbone_torsions(xyz)  # the placed window's own
            loop_samples_: tuple[Sample, ...] | None = None
            if samples > 0 and "bin_probs" in pred:
                found, wins = loop_samples(self, pred, i, q.cdr, q.sequence, n, a, b, samples)
                loop_samples_ = tuple(found)
                if sample_windows is not None:
                    sample_windows[i] = [planarize(w, sn + q.sequence + sc)[0][pn : n - pc] for w in wins]
            ident, cand = identity[i], cands[i]
            if cand is not None and (pn or pc):  # the query's own stems, as ``place`` sees the window
                cand = replace(cand, windows=cand.windows[:, pn : n - pc])
            results.append(LoopResult(
                q.cdr, q.chain, self.definition, q.sequence, q.stem_n, q.stem_c, q.start, q.residue_ids,
                LoopArrays(xyz[a:b].copy(), ang[a:b].copy(), confidence[i, a:b].copy(), errors[i]),
                seen_in_training=bool(ident is not None and ident >= SEEN_IDENTITY), max_training_identity=ident,
                template=sources[i], rmsd_predicted=err_rmsd[i], warnings=tuple(notes), samples=loop_samples_,
                closure_rmsd=closure, candidates=cand,
            ))  # fmt: skip
        return results

    def conformations(
        self, batch: Inputs, cdrs: list[str], sequences: list[str], template_names: list[list[str]] | None = None,
        nanobody: np.ndarray | None = None, top_k: int = 0, candidates: list[Candidates | None] | None = None,
        top_k_cdrs: set[str] | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[np.ndarray | None], list[str | None]]:
        """Network outputs, and per window the chosen torsions ``[B, L, 3]``, coordinates (None
        where no template fits) and template ids. Windows marked in ``nanobody`` whose CDR is in
        ``info.nanobody_cdrs`` choose among the nanobody templates (where any has their length).
        With ``top_k``, each window's best templates are appended to ``candidates``.

        FvNet runs whose ``info.output`` is ``structure`` write their own conformation
        (predicted torsions and bond angles, rebuilt), ``template`` naming the most
        identical training loop read; other runs write the most probable template.
        """
        xyz: list[np.ndarray | None]
        pred = run_network(self.model, batch, temperature=self.temperature)
        lengths = batch.lengths.numpy()
        if not self.writes_templates:
            xyz_all = rebuild_predicted(pred)
            xyz = [xyz_all[i, :n] for i, n in enumerate(lengths)]
            sources = [names[0] if names else None for names in (template_names or [[]] * len(cdrs))]
            return pred, pred["mean"], list(xyz), sources
        alt = nanobody_choice(self.nanobody_templates, self.nanobody_cdrs, cdrs, nanobody)
        if not self.members:
            chosen, xyz, sources = choose_conformations(pred, cdrs, sequences, lengths, self.templates,
                                                        self.cfg.identity_weight, alt=alt, top_k=top_k,
                                                        candidates=candidates, exclude_identity=self.exclude_identity,
                                                        top_k_cdrs=top_k_cdrs)  # fmt: skip
            return pred, chosen, xyz, sources
        preds = [pred] + [run_network(m.model, batch, temperature=m.temperature) for m in self.members]
        w = member_weights(self.info.ensemble_weights, cdrs, len(preds))
        chosen, xyz, sources = choose_conformations(preds, cdrs, sequences, lengths, self.templates,
                                                    self.cfg.identity_weight, w, alt, top_k, candidates,
                                                    self.exclude_identity, top_k_cdrs)  # fmt: skip
        conf = [bin_confidence(p, chosen, lengths) for p in preds]  # each member's, with its own bins
        pred = {**pred, "ensemble_confidence": sum(w[:, m, None] * c for m, c in enumerate(conf)) / w.sum(1)[:, None]}
        return pred, chosen, xyz, sources

    def output_confidence(self, pred: dict, angles: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``[B, L]`` confidence of the written residues: the networks' (weighted) probability of their bins."""
        if "ensemble_confidence" in pred:
            return pred["ensemble_confidence"]
        return bin_confidence(pred, angles, lengths)

    def predict_frame(
        self, df: pd.DataFrame
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[np.ndarray | None], list[str | None]]:
        """:meth:`conformations` for dataset rows (evaluation and reports use this path)."""
        if self.reads_fv:
            batch, names = frame_batch(df, self.cfg.max_len, self.templates)
            return self.conformations(batch, df["cdr"].tolist(), df["sequence"].tolist(), names)
        return self.conformations(batch_from_frame(df, self.cfg.max_len), df["cdr"].tolist(), df["sequence"].tolist())

    def template_identity(self, cdrs: list[str], sequences: list[str]) -> np.ndarray:
        """Each loop's highest identity to a template of its CDR (the training part only; 0 when none):
        the identity the error model reads (validation loops, which it is fitted on, are not templates)."""
        ident = reference_identity(self.template_sequences, cdrs, sequences)
        return np.array([0.0 if v is None else v for v in ident])

    def document(self, results: list[dict]) -> dict:
        """The JSON document around results."""
        return {"schema_version": SCHEMA_VERSION, "model": self.model_info(), "results": results}

    def model_info(self) -> dict:
        """Name, loopfold version, architecture (and ensemble members'), definition."""
        info = {"name": self.name, "loopfold_version": __version__, "architecture": self.cfg.model,
                "definition": self.definition, "stems": self.stems}  # fmt: skip
        if self.members:
            info["members"] = [f"{m.name} ({m.cfg.model})" for m in self.members]
        return info
