"""JSON values of a prediction: coordinates, rounded angle lists and ``--samples`` entries."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopfold.model.templates import log_probs
from loopfold.structure.rebuild import rebuild_backbone


def coords_json(xyz: np.ndarray) -> dict[str, list]:
    """``{"N": [[x, y, z], ...], "CA": ..., "C": ..., "O": ...}`` rounded to 0.001 Å."""
    return dict(zip(("N", "CA", "C", "O"), np.round(xyz, 3).transpose(1, 0, 2).tolist(), strict=True))


class JsonTable:
    """The loop residues of a batch of windows, rounded and turned into Python lists at once: the same
    values as :func:`rounded` and :func:`coords_json` per loop, without NumPy calls per list.

    Args:
        angles: ``[B, L, 3]`` phi, psi, omega (degrees); confidence: ``[B, L]``;
        xyz: per window ``[n, 4, 3]`` backbone coordinates; spans: per window its loop residues ``(a, b)``.
    """

    def __init__(self, angles: np.ndarray, confidence: np.ndarray, xyz: list[np.ndarray],
                 spans: list[tuple[int, int]]) -> None:  # fmt: skip
        self.sizes = np.array([b - a for a, b in spans], dtype=int)
        self.start = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
        #: window and residue index of every loop residue, loops end to end
        self.rows = win, res = (np.repeat(np.arange(len(spans)), self.sizes),
                                np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, int))
        self.angles = np.round(angles[win, res], 1).T.tolist()  # [3][M]
        self.confidence = np.round(confidence[win, res], 3).tolist()
        flat = np.concatenate([w[a:b] for w, (a, b) in zip(xyz, spans, strict=True)]) if spans else np.zeros((0, 4, 3))
        self.coords = np.round(flat, 3).transpose(1, 0, 2).tolist()  # [4][M][3]

    def split(self, values: list) -> list[list]:
        """A list over all loop residues (end to end) cut into one list per window."""
        return [values[lo:hi] for lo, hi in zip(self.start[:-1], self.start[1:], strict=True)]

    def loop(self, i: int) -> dict[str, Any]:
        """Window i's loop residues: ``phi``, ``psi``, ``omega``, ``confidence`` (None for NaN), ``coords``."""
        lo, hi = self.start[i], self.start[i + 1]
        phi, psi, omega = (v[lo:hi] for v in self.angles)
        out = {"phi": phi, "psi": psi, "omega": omega, "confidence": self.confidence[lo:hi]}
        if any(x != x for v in out.values() for x in v):  # NaN: undefined, written as None
            out = {k: [None if x != x else x for x in v] for k, v in out.items()}
        out["coords"] = dict(zip(("N", "CA", "C", "O"), (v[lo:hi] for v in self.coords), strict=True))
        return out


def sample_entry(probability: float, template: str | None, angles: np.ndarray, xyz: np.ndarray) -> dict:
    """One entry of a loop's ``samples`` list."""
    return {"probability": round(float(probability), 3), "template": template, "phi": rounded(angles[:, 0], 1),
            "psi": rounded(angles[:, 1], 1), "omega": rounded(angles[:, 2], 1), "coords": coords_json(xyz)}  # fmt: skip


def rounded(values: np.ndarray, ndigits: int = 2) -> list[float | None]:
    """Rounded values as a list, None where a value is NaN (undefined)."""
    return [None if v != v else v for v in np.round(values, ndigits).tolist()]


def loop_samples(predictor, pred: dict, i: int, cdr: str, sequence: str, n: int, a: int, b: int,  # noqa: ANN001
                 k: int) -> tuple[list[dict], list[np.ndarray]]:  # fmt: skip
    """Up to k distinct conformations with probabilities (softmax of their scores among the k): the
    JSON entries and each one's whole ``[n, 4, 3]`` window (stems included: what placement reads).

    With a template library: the k most probable distinct templates; without
    one: draws from the per-residue bin probabilities, the mode first.
    """
    if predictor.templates is not None:
        logp, cis_logp = log_probs(pred)
        cis = None if cis_logp is None else cis_logp[i, :n]
        ranked = predictor.templates.rank(cdr, sequence, logp[i, :n], pred["bin_centers"], cis,
                                     predictor.cfg.identity_weight, k)  # fmt: skip
        if ranked:
            scores = np.array([r[3] for r in ranked])
            w = np.exp(scores - scores.max())
            w /= w.sum()
            return ([sample_entry(p, src, t[a:b], xyz[a:b]) for (t, xyz, src, _), p in zip(ranked, w, strict=True)],
                    [xyz for _, xyz, _, _ in ranked])  # fmt: skip
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
    out, windows = [], []
    for p, weight in zip(picks, w, strict=True):
        ang = pred["mode"][i, :n].copy()
        ang[:, 0], ang[:, 1] = centers[p, 0], centers[p, 1]
        xyz = rebuild_backbone(ang)
        out.append(sample_entry(weight, None, ang[a:b], xyz[a:b]))
        windows.append(xyz)
    return out, windows

