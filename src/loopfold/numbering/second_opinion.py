"""A second, independent numbering: anarcii (Oxford OPIG's antibody language model, BSD-3).

Used only for domains whose anarcism numbering fails validation (see
:mod:`loopfold.numbering.validate`). The model ships inside the ``anarcii``
package (nothing is downloaded) and is loaded once, on first use, so runs in
which every domain passes never pay its start-up.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import threading

_LOCK = threading.Lock()
_MODEL = None


def _model():  # noqa: ANN202 - anarcii's own type
    """The anarcii numbering model (IMGT, CPU), loaded once."""
    global _MODEL
    if _MODEL is None:
        import torch
        from anarcii import Anarcii

        threads = torch.get_num_threads()  # anarcii sets torch's thread count; keep the caller's
        with contextlib.redirect_stdout(io.StringIO()):
            _MODEL = Anarcii(seq_type="antibody", mode="accuracy", cpu=True, ncpu=_threads(), verbose=False)
        torch.set_num_threads(threads)
    return _MODEL


def _threads() -> int:
    """Torch threads for anarcii: one inside worker processes (they already share the cores), else all."""
    import torch

    return 1 if multiprocessing.parent_process() is not None else torch.get_num_threads()


def renumber(items: list[tuple[str, str]]) -> dict[str, tuple[str, tuple[int, ...], tuple[tuple[int, str], ...]] | str]:
    """IMGT numbering of each ``(name, sequence)`` by anarcii.

    Returns, per name, ``(chain type H/L, sequence indices, (number, insertion) positions)``
    of the first domain found, or a string giving why none was found.
    """
    if not items:
        return {}
    with _LOCK:
        import torch

        model = _model()
        threads = torch.get_num_threads()
        torch.set_num_threads(_threads())
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                raw = model.number([(n, s) for n, s in items])
        finally:
            torch.set_num_threads(threads)
    out: dict = {}
    for name, seq in items:
        res = raw.get(name) or {}
        if res.get("error") or not res.get("numbering") or res.get("chain_type") not in ("H", "K", "L"):
            out[name] = str(res.get("error") or "no antibody variable domain found")
            continue
        idx, pos = [], []
        i = int(res.get("query_start") or 0)
        for (number, icode), aa in res["numbering"]:
            if aa == "-":
                continue
            if i >= len(seq) or seq[i] != aa:
                out[name] = "numbering does not follow the sequence"
                break
            idx.append(i)
            pos.append((int(number), str(icode).strip()))
            i += 1
        else:
            out[name] = ("H" if res["chain_type"] == "H" else "L", tuple(idx), tuple(pos))
    return out
