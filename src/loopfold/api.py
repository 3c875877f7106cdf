"""The Python API: ``from loopfold import LoopFold``.

Example (the README has the same as a doctest, which the tests run)::

    from loopfold import LoopFold
    fv = LoopFold().predict(heavy="EVQLVESGGG...", light="DIQMTQSPSS...")
    fv.loops[2].cdr, fv.loops[2].coords.shape      # ('H3', (13, 4, 3))
    fv.save("model.pdb")

The command line (``loopfold predict``) calls the same class.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopfold import __version__
from loopfold.constants import B_REMARK
from loopfold.errors import InvalidFile, InvalidInput, LoopfoldError
from loopfold.fv.assemble import FrameworkBuilder, FvModel
from loopfold.fv.library import LIBRARY_FILE, load_library
from loopfold.io.fasta import AntibodyInput
from loopfold.pipeline.results import LoopResult

if TYPE_CHECKING:
    from loopfold.fv.refine import Refinement

#: antibodies in the first chunk a stream predicts (then 4x each chunk, up to ``chunk``)
FIRST_CHUNK = 8


@dataclass(frozen=True)
class Loop:
    """One predicted CDR loop (arrays over its residues, stems excluded)."""

    cdr: str
    chain: str
    sequence: str
    start: int | None
    coords: np.ndarray  # [L, 4, 3] N, CA, C, O (Å)
    phi: np.ndarray
    psi: np.ndarray
    omega: np.ndarray
    confidence: np.ndarray
    error: np.ndarray | None  # predicted error per residue (Å), None without an error model
    rmsd_predicted: float | None
    template: str | None
    #: the loop residues' IMGT numbers with insertion code (``"111A"``; None for a loop given alone)
    residue_ids: tuple[str, ...] | None = None

    @classmethod
    def from_result(cls, r: LoopResult) -> Loop:
        """From the pipeline's typed loop (its values before rounding; the record holds them rounded)."""
        v = r.values
        return cls(r.cdr, r.chain, r.sequence, r.start, v.coords, v.angles[:, 0], v.angles[:, 1], v.angles[:, 2],
                   v.confidence, v.error, r.rmsd_predicted, r.template, r.residue_ids)  # fmt: skip

    @classmethod
    def from_json(cls, lp: dict) -> Loop:
        """From one entry of a result's ``loops`` list."""
        arr = lambda key: np.array([np.nan if v is None else v for v in lp[key]], dtype=float)  # noqa: E731
        return cls(lp["cdr"], lp["chain"], lp["sequence"], lp["start"],
                   np.stack([np.array(lp["coords"][k], dtype=float) for k in ("N", "CA", "C", "O")], 1),
                   arr("phi"), arr("psi"), arr("omega"), arr("confidence"),
                   arr("error") if "error" in lp else None, lp.get("rmsd_predicted"), lp.get("template"),
                   tuple(lp["residue_ids"]) if lp.get("residue_ids") else None)  # fmt: skip


@dataclass(frozen=True)
class Prediction:
    """One antibody's prediction: its loops, the whole Fv (when built) and the JSON-ready record."""

    id: str
    loops: tuple[Loop, ...]
    fv: FvModel | None
    record: dict = field(repr=False)
    model: str = ""

    def to_json(self) -> str:
        """The record as JSON (the same object ``loopfold predict --jsonl`` writes per line)."""
        return json.dumps(self.record)

    def text(self, fmt: str = "pdb", refine: bool = False) -> str:
        """The Fv as PDB or mmCIF text (predicted error in the B-factor column); with ``refine``, side
        chains added and a restrained minimisation (:mod:`loopfold.fv.refine`; needs OpenMM), checked
        as :meth:`refined` says."""
        from loopfold.pipeline.fv_file import fv_text

        if refine:
            return self.refined(fmt).text
        return fv_text(self._fv(), fmt, self._remarks(), name=self.id)

    def refined(self, fmt: str = "pdb") -> Refinement:
        """The Fv refined, checked: a refinement that makes a D-residue or a non-planar peptide bond the
        model did not have is undone (``refined`` False, ``reason`` why, the unrefined text)."""
        from loopfold.fv.refine import refine_checked
        from loopfold.io.model_file import pdb_to_cif
        from loopfold.pipeline.fv_file import fv_text

        out = refine_checked(fv_text(self._fv(), "pdb", self._remarks()), self.id)
        return out if fmt == "pdb" else replace(out, text=pdb_to_cif(out.text, self.id))

    def loops_text(self, fmt: str = "pdb") -> str:
        """The loops alone as PDB or mmCIF text (what ``--pdb-dir`` writes without an Fv): chains H and L,
        residues by their IMGT numbers (a loop given alone: 1, 2, ...), each loop centred 20 Å from the
        previous (they are predicted apart), its predicted error (Å) as B-factor."""
        from loopfold.io.model_file import ModelChain, model_text

        chains, offset = [], 0.0
        for lp in self.loops:
            xyz = lp.coords - lp.coords[:, 1].mean(0) + [offset, 0.0, 0.0]
            offset += 20.0
            first = (lp.start or 0) + 1
            ids = lp.residue_ids or tuple(str(first + i) for i in range(len(lp.sequence)))
            b = None if lp.error is None else np.round(lp.error, 2)  # the JSON's error (0.01 Å), as the Fv's B
            chains.append(ModelChain(lp.chain, lp.sequence, ids, xyz, b_factors=b))
        fv_error = self.record.get("fv_error")
        remarks = [
            f"loopfold {__version__} model {self.model}",
            "CDR loops predicted from sequence; each loop placed on its own, 20 A apart",
            *([B_REMARK] if any(lp.error is not None for lp in self.loops) else []),
            *(["residues numbered by IMGT"] if any(lp.residue_ids for lp in self.loops) else []),
            *[f"{lp.cdr} {lp.sequence}" for lp in self.loops],
            *([f"no Fv: {fv_error}"] if fv_error else []),
        ]
        return model_text(chains, fmt, remarks, name=self.id)

    def _fv(self) -> FvModel:
        if self.fv is None:
            why = self.record.get("fv_error") or self.record.get("error") or "whole-Fv building was off"
            raise LoopfoldError(f"{self.id}: no Fv was built ({why})")
        return self.fv

    def _remarks(self) -> list[str]:
        fv = self._fv()
        return [f"loopfold {__version__} model {self.model}", f"{self.id}: Fv from sequence, IMGT numbering",
                f"templates {' '.join(f'{k}:{v}' for k, v in fv.templates.items())}", B_REMARK,
                *[f"{lp.cdr} {lp.sequence}" for lp in self.loops]]  # fmt: skip

    def save(self, path: str | Path, refine: bool = False) -> None:
        """Write the Fv to ``path``: mmCIF for ``.cif``, PDB otherwise (atomically; an existing regular
        file is replaced, anything else at the path is refused); ``refine`` as in :meth:`text`."""
        import os
        import stat

        from loopfold.io.atomic import write_text

        p = Path(path)
        if os.path.lexists(p) and not stat.S_ISREG(os.lstat(p).st_mode):
            raise InvalidFile(f"{p}: exists and is not a regular file; refusing to replace it")
        write_text(p, self.text("cif" if p.suffix.lower() in (".cif", ".mmcif") else "pdb", refine))


@dataclass(frozen=True)
class GraftedStructure:
    """A structure with predicted CDR loops in place of its own (:meth:`LoopFold.predict_structure`):
    the loops (in the structure's frame), the JSON-ready record and the structure's PDB text."""

    id: str
    loops: tuple[Loop, ...]
    record: dict = field(repr=False)
    text: str = field(repr=False)


class LoopFold:
    """The predictor: shipped model and framework library unless ``model`` names a run folder.

    Args:
        model: a run folder (``loopfold train --out``); default the shipped model.
        fv: build whole Fv models (framework templates + grafted loops); loops only when False.
        species: number chains against these species' germline profiles only (e.g. ``["human"]``
            for a human repertoire: faster); default all species.
        workers: threads that number chains (default: every core).
        nanobody: a heavy chain alone is a nanobody (True) or a conventional VH (False) whatever its
            FR2 hallmarks say; default (None) the hallmarks decide (:mod:`loopfold.numbering.vhh`).

    A chain seen before by this object (same sequence) is not numbered again.
    """

    def __init__(self, model: str | Path | None = None, fv: bool = True, species: list[str] | None = None,
                 workers: int | None = None, nanobody: bool | None = None) -> None:  # fmt: skip
        from loopfold.numbering.cache import ChainNumberer
        from loopfold.pipeline.predictor import SHIPPED, Predictor

        self.numberer, self.workers, self.nanobody = ChainNumberer(species), workers, nanobody
        self.predictor = Predictor(model)
        self.builder: FrameworkBuilder | None = None
        if fv:
            path = Path(model) / LIBRARY_FILE if model is not None else SHIPPED / LIBRARY_FILE
            self.builder = FrameworkBuilder(load_library(path if path.is_file() else SHIPPED / LIBRARY_FILE))

    def predict(self, heavy: str | None = None, light: str | None = None, name: str = "query") -> Prediction:
        """Predict one antibody (heavy alone: a nanobody or a VH, see ``nanobody``; light alone: a VL domain).

        Raises:
            InvalidInput: neither chain given, or a sequence or the name not text.
            InvalidSequence: a letter that is not an amino acid, or a loop too long for the model.
            NumberingError: a chain is not an antibody variable domain (or its numbering failed validation).
            LoopfoldError: any other reason the antibody cannot be predicted (the message says why).
        """
        ((pred, error),) = list(self._run([_input(name, heavy, light)]))
        if error is not None:
            raise error
        return pred

    def predict_structure(self, path: str | Path, loops: list[str] | None = None) -> GraftedStructure:
        """Replace the CDR loops of a PDB or mmCIF file (``loops``: e.g. ``["H3"]``; default all) with
        predictions closed onto its own stems: the same queries, templates and confidences as the
        chains' sequences give :meth:`predict` (numbered with this object's cache and species).

        Raises:
            LoopfoldError: an unreadable structure, no antibody chain, a requested loop absent, or stems
                with missing atoms or breaks.
        """
        from loopfold.pipeline.graft import predict_structure

        record, text, placed = predict_structure(self.predictor, path, loops, self.numberer, self.nanobody)
        return GraftedStructure(record["id"], tuple(Loop.from_result(r) for r in placed), record, text)

    def predict_loop(self, sequence: str, cdr: str = "H3", stems: tuple[str, str] | None = None,
                     samples: int = 0, name: str = "query") -> Prediction:  # fmt: skip
        """Predict a loop sequence alone (no chain, no Fv): stems default to the CDR's most common
        training stems; ``samples`` alternative conformations.

        Raises:
            InvalidSequence: an unknown CDR, a letter that is not an amino acid, or too long a loop.
        """
        from loopfold.pipeline.results import loops_json

        p = self.predictor
        found = p.predict_queries([p.loop_query(sequence, cdr, stems)], samples)
        record: dict[str, Any] = {"id": name, "loops": loops_json(found)}
        return Prediction(name, tuple(Loop.from_result(r) for r in found), None, record, p.name)

    def predict_many(
        self, antibodies: Iterable[AntibodyInput | tuple[str, str | None, str | None]], chunk: int = 512,
        first_chunk: int | None = FIRST_CHUNK,
    ) -> Iterator[tuple[Prediction, LoopfoldError | None]]:
        """Stream ``(prediction, error)`` per antibody in input order (``(name, heavy, light)`` tuples or
        :class:`AntibodyInput`); a record that fails gives the exception (``InvalidSequence``,
        ``NumberingError``, ...; its message in the record's ``error``) and an empty prediction.

        A record that is not an AntibodyInput or a ``(name, heavy, light)`` tuple of text is one
        such failure (named ``antibodies[k]`` when it has no usable name), not the end of the stream.
        Antibodies are numbered and predicted ``chunk`` at a time; the chunks start at ``first_chunk``
        and grow 4-fold (the first predictions come within seconds; None: every chunk ``chunk``). A value
        can differ at its last rounded digit with the chunking (the network's float sums).

        Raises:
            InvalidInput: ``chunk`` or ``first_chunk`` not a positive integer (at the call).
        """
        _check_chunk(chunk, first_chunk)

        def records() -> Iterator[AntibodyInput]:
            for k, a in enumerate(antibodies):
                if isinstance(a, AntibodyInput):
                    yield a
                    continue
                seq = isinstance(a, tuple | list)
                name = a[0] if seq and a and isinstance(a[0], str) else f"antibodies[{k}]"
                try:
                    if not (seq and len(a) in (3, 4)):
                        raise InvalidInput(f"{name}: expected an AntibodyInput or a (name, heavy, light) tuple, "
                                           f"got {type(a).__name__}")  # fmt: skip
                    yield _input(*a)
                except InvalidInput as exc:
                    yield AntibodyInput(name, None, None, error=exc)

        return self._run(records(), chunk, first_chunk=first_chunk)

    def predictions(
        self, antibodies: Iterable[AntibodyInput], samples: int = 0, chunk: int = 512,
        first_chunk: int | None = FIRST_CHUNK,
    ) -> Iterator[tuple[Prediction, LoopfoldError | None]]:
        """:meth:`predict_many` for :class:`AntibodyInput` records, with ``samples`` alternative
        conformations per loop (what ``loopfold predict --fasta`` runs)."""
        _check_chunk(chunk, first_chunk)
        return self._run(antibodies, chunk, samples, first_chunk)

    def _run(self, antibodies: Iterable[AntibodyInput], chunk: int = 512, samples: int = 0,
             first_chunk: int | None = None) -> Iterator[tuple[Prediction, LoopfoldError | None]]:  # fmt: skip
        from loopfold.pipeline.batch import predict_antibodies

        name = self.predictor.name
        for r in predict_antibodies(self.predictor, antibodies, samples, chunk=chunk, fv=self.builder,
                                    workers=self.workers, numberer=self.numberer, nanobody=self.nanobody,
                                    first_chunk=first_chunk):
            loops = tuple(Loop.from_result(lp) for lp in r.loops)
            yield Prediction(r.result["id"], loops, r.fv, r.result, name), r.error

    def document(self, records: list[dict]) -> dict:
        """The JSON document around records (schema version, model)."""
        return self.predictor.document(records)


def _check_chunk(chunk: object, first_chunk: object = None) -> None:
    for name, value in (("chunk", chunk), ("first_chunk", first_chunk)):
        if (value is not None or name == "chunk") and (isinstance(value, bool) or not isinstance(value, int)
                                                       or value < 1):  # fmt: skip
            raise InvalidInput(f"{name} {value!r}: expected a positive number of antibodies per batch")


def _input(name: object, heavy: object, light: object, other: object = None) -> AntibodyInput:
    """An AntibodyInput from API arguments (``other``: an unlabelled chain), or InvalidInput naming the
    argument that is wrong."""
    if not isinstance(name, str):
        raise InvalidInput(f"name {name!r}: expected text")
    for arg, seq in (("heavy", heavy), ("light", light), ("other", other)):
        if seq is not None and not isinstance(seq, str):
            raise InvalidInput(f"{name}: {arg} is a {type(seq).__name__}, expected the sequence as text "
                               "(one-letter codes)")  # fmt: skip
    if heavy is None and light is None and other is None:
        raise InvalidInput(f"{name}: give a heavy or a light chain sequence (both are None)")
    return AntibodyInput(name, heavy, light, other)  # type: ignore[arg-type]
