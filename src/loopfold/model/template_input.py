"""Retrieved templates as network input: the k most identical training loops of a window.

For each window the k training loops of the same CDR and window length with
the highest sequence identity to its loop are found in the template library.
Per window residue and template the network reads sin/cos of phi, psi and
omega, the three backbone bond angles (N-CA-C, CA-C-N, C-N-CA) as offsets from
ideal / 10 degrees, the template's identity and a present flag (``PER_TEMPLATE`` values), so it can copy a close
template and depart from a distant one. In training a loop never sees itself,
and in a random half of the rows of every batch no template >= 70% identical to it (the
benchmark's leakage bar), so it also learns the case that held-out loops are in.
"""

from __future__ import annotations

import numpy as np

from loopfold import constants as K
from loopfold.data.identity import identity_matrix
from loopfold.model.templates import TemplateLibrary
from loopfold.structure.geometry import internal_geometry

K_TEMPLATES = 3
PER_TEMPLATE = 11
N_GEOMETRY = 9  # per-template residue values before identity and flag
N_TEMPLATE_FEATURES = K_TEMPLATES * PER_TEMPLATE
STRICT_CAP = 0.7


def _group_arrays(library: TemplateLibrary, key: tuple[str, int]) -> np.ndarray:
    """``[N, W, N_GEOMETRY]`` per-template residue features of one group (computed once)."""
    ck = ("input", key)
    if ck not in library._cache:
        tors, xyz = library.groups[key].torsions, library.groups[key].coords
        rad = np.radians(np.nan_to_num(tors, nan=180.0))
        g = internal_geometry(xyz)
        bond = [(np.nan_to_num(v, nan=ideal) - ideal) / 10.0 for v, ideal in
                ((g.n_ca_c, K.ANGLE_N_CA_C), (g.ca_c_n, K.ANGLE_CA_C_N), (g.c_n_ca, K.ANGLE_C_N_CA))]  # fmt: skip
        feats = np.stack([np.sin(rad[..., 0]), np.cos(rad[..., 0]), np.sin(rad[..., 1]), np.cos(rad[..., 1]),
                          np.sin(rad[..., 2]), np.cos(rad[..., 2]), *bond], -1)  # fmt: skip
        library._cache[ck] = feats.astype(np.float32)
    return library._cache[ck]


def retrieve(
    library: TemplateLibrary,
    cdr: str,
    width: int,
    sequences: list[str],
    exclude: list[set[str]] | None = None,
    caps: np.ndarray | None = None,
    k: int = K_TEMPLATES,
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """The k most identical templates of (cdr, width) for each loop sequence.

    Returns template indices ``[Q, k]`` (-1 where fewer exist), their identities
    ``[Q, k]`` and their loop ids. ``exclude`` holds loop ids a query may not
    see; ``caps`` per query an identity at or above which templates are hidden.
    """
    q = len(sequences)
    idx = np.full((q, k), -1, dtype=np.int64)
    ident = np.zeros((q, k), dtype=np.float32)
    names: list[list[str]] = [[] for _ in range(q)]
    group = library.groups.get((cdr, width))
    if group is None or q == 0:
        return idx, ident, names
    ids = group.ids
    sim = identity_matrix(sequences, group.sequences)
    if caps is not None:
        sim = np.where(sim >= caps[:, None], -1.0, sim)
    if exclude is not None:
        pos = {name: j for j, name in enumerate(ids)}
        for i, ex in enumerate(exclude):
            for name in ex:
                if name in pos:
                    sim[i, pos[name]] = -1.0
    top = np.argsort(-sim, axis=1, kind="stable")[:, : min(k, sim.shape[1])]
    for i in range(q):
        for j, t in enumerate(top[i]):
            if sim[i, t] >= 0:
                idx[i, j], ident[i, j] = t, sim[i, t]
                names[i].append(ids[t])
    return idx, ident, names


def template_features(
    library: TemplateLibrary | None,
    cdrs: list[str],
    sequences: list[str],
    widths: np.ndarray,
    max_len: int,
    exclude: list[set[str]] | None = None,
    caps: np.ndarray | None = None,
) -> tuple[np.ndarray, list[list[str]]]:
    """``[B, max_len, N_TEMPLATE_FEATURES]`` template features and each window's template ids (best first)."""
    b = len(cdrs)
    out = np.zeros((b, max_len, N_TEMPLATE_FEATURES), dtype=np.float32)
    names: list[list[str]] = [[] for _ in range(b)]
    if library is None:
        return out, names
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (cdr, w) in enumerate(zip(cdrs, widths, strict=True)):
        groups.setdefault((cdr, int(w)), []).append(i)
    for (cdr, w), rows in groups.items():
        if (cdr, w) not in library.groups:
            continue
        arr = _group_arrays(library, (cdr, w))
        idx, ident, found = retrieve(library, cdr, w, [sequences[i] for i in rows],
                                     None if exclude is None else [exclude[i] for i in rows],
                                     None if caps is None else caps[rows])  # fmt: skip
        for r, i in enumerate(rows):
            names[i] = found[r]
            for j in range(K_TEMPLATES):
                if idx[r, j] < 0:
                    continue
                base = j * PER_TEMPLATE
                out[i, :w, base : base + N_GEOMETRY] = arr[idx[r, j]]
                out[i, :w, base + N_GEOMETRY] = ident[r, j]
                out[i, :w, base + N_GEOMETRY + 1] = 1.0
    return out, names
