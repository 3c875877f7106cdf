"""Template conformations: real training loops, chosen by the model's own probabilities.

The per-residue most likely Ramachandran bin is not a coherent loop, and the
MSE-optimal mean of two conformations is neither. A loop's conformation is
therefore chosen among real loops of the training data with the same CDR and
window length: the one the network finds most probable (sum over residues of
the log probability of its (phi, psi) bin and of its cis/trans omega), plus
``identity_weight`` x its sequence identity to the query. Its torsions and its
own bond lengths and angles rebuild it exactly, so no ideal-geometry error is
added beyond bond lengths, which are set to the ideal ones (real bond angles are
kept: the N-CA-C angle matters most). Loops without a template of their length
fall back to the per-residue mode rebuilt with ideal geometry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

from loopfold.data.identity import identity_matrix
from loopfold.errors import CheckpointError
from loopfold.io.atomic import atomic_path
from loopfold.model.losses import nearest_bins
from loopfold.structure.geometry import backbone_torsions, internal_geometry
from loopfold.structure.rebuild import ideal_geometry, rebuild_backbone

TEMPLATES = "templates.safetensors"


@dataclass(frozen=True)
class TemplateGroup:
    """The templates of one (CDR, window length): ``torsions`` ``[N, W, 3]`` degrees, ``coords``
    ``[N, W, 4, 3]`` Å, the loop ``sequences`` (no stems) and loop ``ids``, in one order."""

    torsions: np.ndarray
    coords: np.ndarray
    sequences: list[str]
    ids: list[str]


@dataclass
class TemplateLibrary:
    """Real loop windows grouped by (CDR, window length) (:class:`TemplateGroup`)."""

    groups: dict[tuple[str, int], TemplateGroup]
    #: the CDR definition the loops were cut under (None when unknown)
    definition: str | None = None
    #: per (group, bin centres): template bins and masks, computed once (see ``_features``)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> TemplateLibrary:
        """Templates from dataset rows that have coordinates and no chain break or missing atom."""
        groups: dict = {}
        ok = df["coords"].notna() & ~df["has_chain_break"].astype(bool) & ~df["has_missing_atoms"].astype(bool)
        for row in df[ok].itertuples(index=False):
            w = len(row.phi)
            g = groups.setdefault((row.cdr, w), ([], [], [], []))
            tors = backbone_torsions(row.coords)
            g[0].append(tors)
            g[1].append(ideal_bond_rebuild(row.coords, tors))
            g[2].append(row.sequence)
            g[3].append(row.loop_id)
        defs = df["definition"].unique().tolist() if "definition" in df and len(df) else []
        return cls({k: TemplateGroup(np.stack(v[0]), np.stack(v[1]), v[2], v[3]) for k, v in groups.items()},
                   str(defs[0]) if len(defs) == 1 else None)  # fmt: skip

    def save(self, path: str | Path) -> None:
        """Write all groups to one safetensors file (atomically); sequences and ids in its metadata."""
        tensors, meta = {}, {}
        for (cdr, w), g in self.groups.items():
            key = f"{cdr}_{w}"
            tensors[f"{key}.torsions"] = g.torsions.astype(np.float32)
            tensors[f"{key}.coords"] = g.coords.astype(np.float32)
            meta[f"{key}.sequences"] = ",".join(g.sequences)
            meta[f"{key}.ids"] = ",".join(g.ids)
        if self.definition is not None:
            meta["definition"] = self.definition
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> TemplateLibrary:
        """Read a library written by :meth:`save`.

        Raises:
            CheckpointError: missing or corrupt file.
        """
        try:
            tensors = load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise CheckpointError(f"{path}: missing or corrupt template library ({exc})") from None
        groups = {}
        for name in tensors:
            if not name.endswith(".torsions"):
                continue
            key = name[: -len(".torsions")]
            cdr, w = key.rsplit("_", 1)
            groups[(cdr, int(w))] = TemplateGroup(
                tensors[name].astype(np.float64),
                tensors[f"{key}.coords"].astype(np.float64),
                meta.get(f"{key}.sequences", "").split(","),
                meta.get(f"{key}.ids", "").split(","),
            )
        return cls(groups, meta.get("definition"))

    def subset(self, ids: set[str]) -> TemplateLibrary:
        """The templates whose loop id is in ``ids`` (groups left empty are dropped)."""
        groups = {}
        for key, g in self.groups.items():
            keep = [k for k, i in enumerate(g.ids) if i in ids]
            if keep:
                groups[key] = TemplateGroup(g.torsions[keep], g.coords[keep], [g.sequences[k] for k in keep],
                                            [g.ids[k] for k in keep])  # fmt: skip
        return TemplateLibrary(groups, self.definition)

    def _features(self, key: tuple[str, int], centers: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per template of a group: (phi, psi) bin ``[N, W]``, defined mask, cis flag, omega-defined mask."""
        cache = self._cache
        ck = (key, centers.tobytes())
        if ck not in cache:
            tors = self.groups[key].torsions
            phi, psi, om = tors[..., 0], tors[..., 1], tors[..., 2]
            bins = nearest_bins(phi, psi, centers)
            cis = (np.abs(np.nan_to_num(om, nan=180.0)) < 90).astype(int)
            cache[ck] = (bins, np.isfinite(phi) & np.isfinite(psi), cis, np.isfinite(om))
        return cache[ck]

    def scores(
        self,
        cdr: str,
        w: int,
        sequences: list[str],
        bin_logp: np.ndarray,
        centers: np.ndarray,
        cis_logp: np.ndarray | None,
        identity_weight: float = 0.0,
    ) -> np.ndarray:
        """``[Q, N]`` score of every template of group (cdr, w) for Q windows of that group.

        The score is the log probability of the template's (phi, psi) bins and cis/trans
        omegas under the windows' per-residue distributions (``bin_logp`` ``[Q, W, K]``,
        ``cis_logp`` ``[Q, W, 2]``), plus ``identity_weight`` x sequence identity.
        """
        bins, defined, cis, om_defined = self._features((cdr, w), centers)
        score = np.zeros((bin_logp.shape[0], bins.shape[0]))
        for k in range(w):  # [Q, N] per residue position
            score += np.where(defined[:, k], bin_logp[:, k, bins[:, k]], 0.0)
            if cis_logp is not None:
                score += np.where(om_defined[:, k], cis_logp[:, k, cis[:, k]], 0.0)
        if identity_weight:
            score += identity_weight * identity_matrix(sequences, self.groups[(cdr, w)].sequences)
        return score

    def rank(
        self,
        cdr: str,
        sequence: str,
        bin_logp: np.ndarray,
        centers: np.ndarray,
        cis_logp: np.ndarray | None,
        identity_weight: float = 0.0,
        k: int = 1,
    ) -> list[tuple[np.ndarray, np.ndarray, str, float]]:
        """The k best templates for one window, best first: (torsions [W, 3], coords [W, 4, 3], loop id, score).

        Args:
            bin_logp: ``[W, K]`` log probabilities of the bins per window residue.
            cis_logp: ``[W, 2]`` log probabilities of trans and cis per residue, or None.
        """
        w = bin_logp.shape[0]
        group = self.groups.get((cdr, w))
        if group is None:
            return []
        tors, xyz, ids = group.torsions, group.coords, group.ids
        score = self.scores(cdr, w, [sequence], bin_logp[None], centers,
                            None if cis_logp is None else cis_logp[None], identity_weight)[0]  # fmt: skip
        order = np.argsort(-score, kind="stable")
        picked: list[int] = []
        for j in order:  # distinct conformations: skip exact torsion duplicates
            if all(not np.allclose(np.nan_to_num(tors[j]), np.nan_to_num(tors[p])) for p in picked):
                picked.append(int(j))
            if len(picked) == k:
                break
        return [(tors[j], xyz[j], ids[j], float(score[j])) for j in picked]


def ideal_bond_rebuild(coords: np.ndarray, torsions: np.ndarray) -> np.ndarray:
    """A window rebuilt from its torsions and bond angles with ideal (Engh & Huber) bond lengths."""
    own = internal_geometry(coords)
    ideal = ideal_geometry(own.n_ca.shape)
    geom = type(own)(
        n_ca=ideal.n_ca, ca_c=ideal.ca_c, c_n=ideal.c_n, c_o=ideal.c_o,
        n_ca_c=own.n_ca_c, ca_c_n=np.nan_to_num(own.ca_c_n, nan=ideal.ca_c_n[0]),
        c_n_ca=np.nan_to_num(own.c_n_ca, nan=ideal.c_n_ca[0]), ca_c_o=own.ca_c_o, o_torsion=own.o_torsion,
    )  # fmt: skip
    tors = torsions.copy()
    tors[-1, 1:] = np.nan_to_num(tors[-1, 1:], nan=180.0)
    return rebuild_backbone(tors, geom)


def candidate_scores(
    pred: dict[str, np.ndarray] | list[dict[str, np.ndarray]],
    cdrs: list[str],
    sequences: list[str],
    lengths: np.ndarray,
    library: TemplateLibrary,
    identity_weight: float = 0.0,
    weights: np.ndarray | None = None,
    alt: tuple[TemplateLibrary, np.ndarray] | None = None,
) -> Iterator[tuple[tuple[str, int], np.ndarray, np.ndarray, TemplateLibrary]]:
    """Per (CDR, window length) group with templates: the key, the window indices ``[b]``, the
    score of every template of the group for each window ``[b, N]`` (what :func:`choose_conformations`
    maximises; ``bench/recent.py`` ranks candidates by it; ``CIS_PENALTY`` less for a template with a
    cis bond before a query loop residue that is not a proline) and the library scored. ``alt``: another
    library and a ``[B]`` mask of the windows that choose from it where it has their group (the
    nanobody templates). Windows are scored 512 at a time."""
    preds = pred if isinstance(pred, list) else [pred]
    w = np.ones((len(cdrs), len(preds))) if weights is None else np.asarray(weights, dtype=float)
    members = [(log_probs(p), p["bin_centers"]) for p in preds]
    groups: dict[tuple[str, int, bool], list[int]] = {}
    for i, cdr in enumerate(cdrs):
        other = alt is not None and bool(alt[1][i]) and (cdr, int(lengths[i])) in alt[0].groups
        groups.setdefault((cdr, int(lengths[i]), other), []).append(i)
    for (cdr, n, other), rows in groups.items():
        lib = alt[0] if other and alt is not None else library
        if (cdr, n) not in lib.groups:
            continue
        idx = np.array(rows)
        for lo in range(0, len(idx), 512):  # bounded memory: [chunk, N] scores
            part = idx[lo : lo + 512]
            seqs = [sequences[i] for i in part]
            wp = w[part] / w[part].sum(1, keepdims=True)
            sc = sum(wp[:, m, None] * lib.scores(cdr, n, seqs, lp[part, :n], centers,
                                                 None if cp is None else cp[part, :n])
                     for m, ((lp, cp), centers) in enumerate(members) if wp[:, m].any())  # fmt: skip
            if identity_weight:
                sc = sc + identity_weight * identity_matrix(seqs, lib.groups[(cdr, n)].sequences)
            sc = sc - CIS_PENALTY * _cis_before_non_proline(lib.groups[(cdr, n)].torsions, seqs)
            yield (cdr, n), part, sc, lib


@dataclass(frozen=True)
class Candidates:
    """A window's best templates in the network's ranking, best first: their ``windows``
    ``[K, W, 4, 3]``, ``scores`` ``[K]`` (what :func:`choose_conformations` maximises), loop ``ids``
    and sequence ``identity`` ``[K]`` to the query loop."""

    windows: np.ndarray
    scores: np.ndarray
    ids: list[str]
    identity: np.ndarray


def choose_conformations(
    pred: dict[str, np.ndarray] | list[dict[str, np.ndarray]],
    cdrs: list[str],
    sequences: list[str],
    lengths: np.ndarray,
    library: TemplateLibrary | None,
    identity_weight: float = 0.0,
    weights: np.ndarray | None = None,
    alt: tuple[TemplateLibrary, np.ndarray] | None = None,
    top_k: int = 0,
    candidates: list[Candidates | None] | None = None,
    exclude_identity: float | None = None,
    top_k_cdrs: set[str] | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None], list[str | None]]:
    """Per window: torsions ``[B, L, 3]`` of the chosen conformation, its coordinates (None when
    no template fits: rebuild from the per-residue mode then) and the template's loop id.

    ``pred`` may be a list (an ensemble, the run's own network first): each member scores
    the templates with its own bins and the weighted mean score is used, ``weights``
    ``[B, M]`` per window (equal when None; :mod:`loopfold.model.ensemble`). ``alt``: see
    :func:`candidate_scores`. With ``top_k`` and a ``candidates`` list, each window's ``top_k``
    best templates are appended to it (:class:`Candidates`; None where no template fits, and for CDRs
    not in ``top_k_cdrs`` when given). With
    ``exclude_identity``, templates at least that identical to a window's loop are never chosen (a
    training loop predicted as if new: itself and its relatives left out).
    """
    preds = pred if isinstance(pred, list) else [pred]
    w = np.ones((len(cdrs), len(preds))) if weights is None else np.asarray(weights, dtype=float)
    lead = w.argmax(1)  # windows with no template of their length take the most weighted network's mode
    angles = np.stack([preds[m]["mode"][i] for i, m in enumerate(lead)]) if len(cdrs) else preds[0]["mode"].copy()
    coords: list[np.ndarray | None] = [None] * len(cdrs)
    sources: list[str | None] = [None] * len(cdrs)
    if library is None or any("bin_probs" not in p for p in preds):
        return angles, coords, sources
    found: list[Candidates | None] = [None] * len(cdrs)
    for (cdr, n), part, sc, lib in candidate_scores(preds, cdrs, sequences, lengths, library, identity_weight, w,
                                                    alt):  # fmt: skip
        g = lib.groups[(cdr, n)]
        tors, xyz, ids = g.torsions, g.coords, g.ids
        ident = identity_matrix([sequences[i] for i in part], g.sequences) if exclude_identity is not None else None
        if ident is not None and exclude_identity is not None:
            sc = np.where(ident >= exclude_identity, -np.inf, sc)
        for row, (i, best) in enumerate(zip(part, sc.argmax(1), strict=True)):
            if not np.isfinite(sc[row, best]):  # every template of the length left out
                continue
            angles[i, :n] = np.where(np.isfinite(tors[best]), tors[best], angles[i, :n])
            coords[i], sources[i] = xyz[best], ids[best]
            if top_k and (top_k_cdrs is None or cdr in top_k_cdrs):
                top = np.argpartition(-sc[row], min(top_k, len(ids)) - 1)[:top_k]
                top = top[np.argsort(-sc[row, top], kind="stable")]
                top = top[sc[row, top] > sc[row, best] - CIS_PENALTY / 2]  # not left out, not a cis bond to fix
                names = [ids[j] for j in top]
                found[i] = Candidates(xyz[top], sc[row, top], names,
                                      identity_matrix([sequences[i]], [g.sequences[j] for j in top])[0])
    if candidates is not None:
        candidates += found
    return angles, coords, sources


#: Score taken from a template with a cis peptide bond before a query residue that is not a proline:
#: it is chosen only when every template of the window's length has one (the bond is then made trans).
CIS_PENALTY = 1e6


def _cis_before_non_proline(tors: np.ndarray, loops: list[str]) -> np.ndarray:
    """``[B, N]``: template ``t``'s window has a cis bond (|omega| < 90) before a loop residue of query
    ``b`` that is not a proline (stems are the same for every template and query: left alone)."""
    n = tors.shape[1]
    cis = np.abs(np.nan_to_num(tors[:, :-1, 2], nan=180.0)) < 90.0  # [N, W - 1]: bond j -> j + 1
    out = np.zeros((len(loops), len(tors)), dtype=bool)
    for b, seq in enumerate(loops):
        a = (n - len(seq)) // 2  # the window's N-stem residues
        nonpro = np.zeros(n - 1, dtype=bool)
        nonpro[a - 1 : a - 1 + len(seq)] = [c != "P" for c in seq]  # bond j leads into residue j + 1
        out[b] = (cis & nonpro).any(1)
    return out


def nanobody_choice(
    library: TemplateLibrary | None, cdrs_from: set[str], cdrs: list[str], nanobody: np.ndarray | None
) -> tuple[TemplateLibrary, np.ndarray] | None:
    """``alt`` for :func:`choose_conformations`: the nanobody templates, and the windows (marked in
    ``nanobody``, of a CDR in ``cdrs_from``) that choose from them; None when no window does."""
    if nanobody is None or library is None or not cdrs_from:
        return None
    mask = np.asarray(nanobody, dtype=bool) & np.array([c in cdrs_from for c in cdrs], dtype=bool)
    return (library, mask) if mask.any() else None


def template_ids(library: TemplateLibrary | None) -> set[str]:
    """Loop ids of every template in a library."""
    return set() if library is None else {i for g in library.groups.values() for i in g.ids}


def load_templates(run_dir: str | Path) -> TemplateLibrary | None:
    """The template library of a run folder, or None when it has none."""
    path = Path(run_dir) / TEMPLATES
    return TemplateLibrary.load(path) if path.is_file() else None


def log_probs(pred: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """Log bin probabilities ``[B, L, K]`` and log (trans, cis) probabilities ``[B, L, 2]`` (or None)."""
    logp = np.log(pred["bin_probs"] + 1e-9)
    if "cis_logit" not in pred:
        return logp, None
    p_cis = 1 / (1 + np.exp(-pred["cis_logit"]))
    return logp, np.log(np.stack([1 - p_cis, p_cis], -1) + 1e-9)
