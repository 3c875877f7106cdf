"""Each template loop's own framework, to place the loop in an Fv as it sat in its crystal.

A template window (its N-stem, loop and C-stem, rebuilt from its torsions) fixes
the loop's shape but not its direction in a domain: three stem residues each side
leave the apex free to swing. Its own chain's framework does fix it. For every
template loop this module keeps the CA atoms of its chain's framework at their
IMGT positions (1-128, CDR positions empty), in the frame of the template's
rebuilt window. A loop is then placed in a model by superposing those framework
atoms on the model's own at the same positions (:func:`framework_pose`), and
closed onto the model's stems from there (:mod:`loopfold.structure.closure`).

Built by ``loopfold data template-frames RUN FOLDER...`` from the structure files
the templates were cut from (each chain numbered from its sequence with
validation, as ``predict`` numbers queries); a template whose window cannot be
found again in its file (superposed RMSD over ``MATCH_RMSD``) gets no frame and
keeps the stem placement.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopfold.constants import CDRS
from loopfold.data.extract import folder_metadata, is_structure_file, metadata_for, source_name
from loopfold.errors import CheckpointError, LoopfoldError
from loopfold.fv.library import N_POS, domain_positions, framework_positions
from loopfold.io.atomic import atomic_path
from loopfold.io.pdb import read_structure
from loopfold.model.templates import TemplateLibrary
from loopfold.numbering.anarci import NumberedDomain, number_sequences
from loopfold.structure.superpose import kabsch

FRAMES_FILE = "template_frames.npz"
#: A template's rebuilt window must superpose on the window found in its file this well (Å, N/CA/C/O).
MATCH_RMSD = 0.5
#: Fewest shared framework CA atoms a placement superposes (else the loop keeps the stem placement).
MIN_POSITIONS = 20


@dataclass(frozen=True)
class TemplateFrames:
    """Per template loop id, its chain's framework CA ``[128, 3]`` (IMGT positions; NaN where none)
    in the frame of the template's rebuilt window; the CDRs whose loops are placed by it, and the
    radius (Å) around the stems within which framework atoms are superposed (None: all of them).
    Both are chosen on validation structures (``bench/placement.py --apply``)."""

    ids: np.ndarray
    ca: np.ndarray
    cdrs: tuple[str, ...] = CDRS
    radius: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row", {str(i): k for k, i in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, loop_id: str | None) -> np.ndarray | None:
        """The framework CA of a template (None when it has none)."""
        k = self._row.get(loop_id) if loop_id is not None else None  # type: ignore[attr-defined]
        return None if k is None else self.ca[k]

    def save(self, path: str | Path) -> None:
        """Write as compressed ``.npz`` (atomically)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, ids=self.ids.astype(str), ca=self.ca.astype(np.float32),
                                cdrs=np.array(self.cdrs, dtype=str),
                                radius=np.array(np.nan if self.radius is None else self.radius))  # fmt: skip


def load_frames(path: str | Path) -> TemplateFrames | None:
    """The template frames of a run folder's file, or None when the file is absent.

    Raises:
        CheckpointError: the file is there but corrupt.
    """
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, ca, cdrs = z["ids"].astype(str), z["ca"].astype(np.float64), tuple(str(c) for c in z["cdrs"])
            radius = float(z["radius"].item())
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a loopfold template-frames file ({exc})") from None
    if ca.shape != (len(ids), N_POS, 3) or ids.ndim != 1 or not set(cdrs) <= set(CDRS) or radius <= 0:
        raise CheckpointError(f"{path}: template frames of shape {ca.shape} for {len(ids)} ids, CDRs {cdrs}, "
                              f"radius {radius}")  # fmt: skip
    return TemplateFrames(ids, ca, cdrs, None if radius != radius else radius)


def domain_ca(coords: np.ndarray, domain: NumberedDomain) -> np.ndarray:
    """``[128, 3]`` CA of a chain's framework residues at their IMGT positions (``coords`` ``[L, 4, 3]``
    indexed like the numbered sequence; NaN at CDR positions, absent residues and missing atoms)."""
    at, _ = domain_positions(domain)
    out = np.full((N_POS, 3), np.nan)
    keep = framework_positions(domain.chain_type) & (at >= 0)
    out[keep] = coords[at[keep], 1]
    return out


def framework_pose(template_ca: np.ndarray, model_ca: np.ndarray, min_positions: int = MIN_POSITIONS
                   ) -> tuple[np.ndarray, np.ndarray, float] | None:  # fmt: skip
    """Rotation, translation and residual RMSD (Å) that put a template's framework on the model's
    (both ``[128, 3]``, IMGT positions), or None when fewer than ``min_positions`` are shared."""
    ok = np.isfinite(template_ca).all(1) & np.isfinite(model_ca).all(1)
    if ok.sum() < min_positions:
        return None
    rot, tr = kabsch(template_ca[ok], model_ca[ok])
    res = float(np.sqrt((((template_ca[ok] @ rot.T + tr) - model_ca[ok]) ** 2).sum(-1).mean()))
    return rot, tr, res


def _parse_id(loop_id: str) -> tuple[str, str, str, str] | None:
    """(source, pdb id, chain, CDR) of a loop id ``source:pdb_chain_CDR`` (None for a multi-domain id)."""
    source, _, rest = loop_id.partition(":")
    parts = rest.split("_")
    return (source, parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def _frames_of_file(job: tuple[str, str | None, list[tuple[str, str, str, np.ndarray]]]
                    ) -> list[tuple[str, np.ndarray]]:  # fmt: skip
    """One structure file's templates (loop id, chain, loop sequence, rebuilt window): each one's
    framework CA in its window's frame, for the templates found again in the file."""
    path, pdb_id, wanted = job
    try:
        sf = read_structure(path, pdb_id)
    except LoopfoldError:
        return []
    chains = {bb.chain_id: bb for bb in sf.chains}
    numbered = {}
    names = sorted({c for _, c, _, _ in wanted if c in chains})
    for c, doms in zip(names, number_sequences([(f"{path}:{c}", chains[c].sequence) for c in names], workers=1),
                       strict=True):  # fmt: skip
        if not isinstance(doms, LoopfoldError):
            numbered[c] = doms
    out = []
    for loop_id, c, seq, window in wanted:
        bb, cdr = chains.get(c), loop_id.rsplit("_", 1)[-1]
        dom = next((d for d in numbered.get(c, []) if d.chain_type == cdr[0]), None)
        if bb is None or dom is None:
            continue
        a = (len(window) - len(seq)) // 2
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        start = bb.sequence.find(seq)
        while start >= 0:
            crystal = bb.coords[start - a : start - a + len(window)] if start >= a else np.empty((0, 4, 3))
            ok = np.isfinite(crystal).all((1, 2)) if len(crystal) == len(window) else np.zeros(0, bool)
            if ok.sum() >= 3:
                m, t = window[ok].reshape(-1, 3), crystal[ok].reshape(-1, 3)
                rot, tr = kabsch(m, t)
                r = float(np.sqrt((((m @ rot.T + tr) - t) ** 2).sum(-1).mean()))
                if best is None or r < best[0]:
                    best = (r, rot, tr)
            start = bb.sequence.find(seq, start + 1)
        if best is None or best[0] > MATCH_RMSD:
            continue
        _, rot, tr = best
        out.append((loop_id, (domain_ca(bb.coords, dom) - tr) @ rot))  # crystal -> the window's frame
    return out


def _file_pdb_id(path: Path) -> str | None:
    """The PDB id a structure file gives itself (None when it cannot be read)."""
    try:
        return read_structure(path).pdb_id
    except LoopfoldError:
        return None


def build_frames(templates: TemplateLibrary, folders: list[str | Path], workers: int | None = None
                 ) -> tuple[TemplateFrames, dict[str, int]]:  # fmt: skip
    """The frames of every template of a library found in the folders' structure files, and counts."""
    files: dict[tuple[str, str], str] = {}
    for folder in map(Path, folders):
        meta, source = folder_metadata(folder), source_name(folder)
        for p in sorted(folder.iterdir()):
            if is_structure_file(p):  # the PDB id as loops were cut: the folder's metadata, else the file's own
                pdb = metadata_for(str(p), meta).get("pdb_id") or _file_pdb_id(p)
                if pdb:
                    files.setdefault((source, pdb), str(p))
    jobs: dict[str, list] = {}
    report = {"templates": 0, "no_file": 0, "framed": 0, "not_found_again": 0}
    for g in templates.groups.values():
        for loop_id, seq, window in zip(g.ids, g.sequences, g.coords, strict=True):
            report["templates"] += 1
            parsed = _parse_id(loop_id)
            path = files.get(parsed[:2]) if parsed else None
            if parsed is None or path is None:
                report["no_file"] += 1
                continue
            jobs.setdefault(path, []).append((loop_id, parsed[2], seq, window))
    pdb_of = {path: pdb for (_, pdb), path in files.items()}
    found: list[tuple[str, np.ndarray]] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for got in pool.map(_frames_of_file, [(p, pdb_of[p], w) for p, w in jobs.items()], chunksize=8):
            found += got
    report["framed"] = len(found)
    report["not_found_again"] = report["templates"] - report["no_file"] - len(found)
    if not found:
        raise LoopfoldError(f"{', '.join(map(str, folders))}: no template loop was found in these structures")
    found.sort(key=lambda f: f[0])  # no CDR placed by them until validation says so (bench/placement.py)
    return TemplateFrames(np.array([f[0] for f in found]), np.stack([f[1] for f in found]), ()), report
