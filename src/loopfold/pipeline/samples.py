"""A loop's ``--samples``: alternative conformations with their probabilities."""

from __future__ import annotations

import numpy as np

from loopfold.model.templates import log_probs
from loopfold.pipeline.results import Sample
from loopfold.structure.rebuild import rebuild_backbone


def loop_samples(predictor, pred: dict, i: int, cdr: str, sequence: str, n: int, a: int, b: int,  # noqa: ANN001
                 k: int) -> tuple[list[Sample], list[np.ndarray]]:  # fmt: skip
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
            return ([Sample(float(p), src, t[a:b], xyz[a:b]) for (t, xyz, src, _), p in zip(ranked, w, strict=True)],
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
        out.append(Sample(float(weight), None, ang[a:b], xyz[a:b]))
        windows.append(xyz)
    return out, windows

