"""The seed author's pickles: an allow-list unpickler and a decoder to loop records.

Each pickle holds a tuple of six numpy arrays (train/validation/test inputs
and targets). Inputs are one-hot ``[N, 31, 21]`` over
:data:`loopfold.constants.SEED_ALPHABET`; targets ``[N, 124]`` are 31 x (sin phi,
cos phi, sin psi, cos psi), padded with -3. The first residue's phi is stored
as (-3, 1) and the last residue's psi as (0, -3): a mask built as
``sign(target + 3)`` keeps a constant 1 and a constant 0 per loop. Decoding
turns both into NaN. Each window is a CDR-H3 (Chothia 95-102) followed by three
C-terminal framework residues (W103-G104-Q105 in most loops).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from loopfold.constants import SEED_ALPHABET, SEED_PAD, THREE_TO_ONE
from loopfold.data.records import LoopRecord
from loopfold.errors import InvalidFile

#: The only globals a seed pickle may name: what numpy needs to rebuild arrays.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
SEED_PARTS = ("train", "validation", "test")
SEED_STEM_C = 3


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, name: str) -> None:
        super().__init__(file)
        self._name = name

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) not in ALLOWED_GLOBALS:
            raise InvalidFile(f"{self._name}: refused to unpickle global {module}.{name} (only numpy arrays allowed)")
        found = super().find_class(module, name)
        if name == "dtype":
            return self._plain_dtype(found)
        return found

    def _plain_dtype(self, make):  # noqa: ANN001, ANN202 - numpy.dtype
        """numpy.dtype, refusing object dtypes before any array of them is built (they carry pickled
        Python objects, and their shape is allocated before their contents are checked)."""

        def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            dt = make(*args, **kwargs)
            if dt.kind not in "biuf":
                raise InvalidFile(f"{self._name}: array of dtype {dt} refused (only boolean and numeric arrays)")
            return dt

        return build


def load_seed_arrays(path: str | os.PathLike[str]) -> tuple[np.ndarray, ...]:
    """The six arrays of a seed pickle, loaded without executing anything but numpy.

    Raises:
        InvalidFile: unreadable, not a pickle, a non-numpy global, or the wrong shapes.
    """
    name = str(path)
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, name).load()
    except InvalidFile:
        raise
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise InvalidFile(f"{name}: not a readable seed pickle ({exc})") from None
    if not (isinstance(obj, tuple) and len(obj) == 6 and all(isinstance(a, np.ndarray) for a in obj)):
        raise InvalidFile(f"{name}: expected a tuple of six numpy arrays")
    for x, y in zip(obj[0::2], obj[1::2], strict=True):
        if x.size == 0 and y.size == 0:
            continue  # an empty part
        if x.ndim != 3 or x.shape[2] != len(SEED_ALPHABET) or y.shape != (x.shape[0], 4 * x.shape[1]):
            raise InvalidFile(f"{name}: unexpected array shapes {x.shape} / {y.shape}")
    return obj


def decode_seed_loop(onehot: np.ndarray, target: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """Sequence, phi and psi (degrees, NaN where undefined) of one seed loop."""
    present = onehot.any(axis=1)
    letters = "".join(THREE_TO_ONE.get(SEED_ALPHABET[k], "X") for k in onehot[present].argmax(axis=1))
    n = len(letters)
    t = target[: 4 * n].reshape(n, 4).astype(np.float64)
    t = np.where(t == SEED_PAD, np.nan, t)
    phi = np.degrees(np.arctan2(t[:, 0], t[:, 1]))
    psi = np.degrees(np.arctan2(t[:, 2], t[:, 3]))
    phi[0] = np.nan  # stored as (-3, 1): undefined
    psi[-1] = np.nan  # stored as (0, -3): undefined
    return letters, phi, psi


def read_seed_pickle(path: str | os.PathLike[str]) -> list[LoopRecord]:
    """Loop records of a seed pickle, each tagged with the pickle's own split part."""
    arrays = load_seed_arrays(path)
    stem = Path(path).name.split(".")[0]
    records = []
    for part, (x, y) in zip(SEED_PARTS, zip(arrays[0::2], arrays[1::2], strict=True), strict=True):
        for i in range(x.shape[0]):
            seq, phi, psi = decode_seed_loop(x[i], y[i])
            records.append(
                LoopRecord(
                    loop_id=f"seed:{stem}:{part}:{i}",
                    source="seed",
                    pdb_id=None,
                    chain=None,
                    chain_type="H",
                    cdr="H3",
                    definition="chothia",
                    sequence=seq[:-SEED_STEM_C],
                    stem_n="",
                    stem_c=seq[-SEED_STEM_C:],
                    phi=phi.tolist(),
                    psi=psi.tolist(),
                    omega=[float("nan")] * len(seq),
                    source_split=part,
                )
            )
    return records
