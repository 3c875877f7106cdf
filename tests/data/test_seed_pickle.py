import pickle

import numpy as np
import pytest

from loopfold.constants import SEED_ALPHABET
from loopfold.data.seed_pickle import load_seed_arrays, read_seed_pickle
from loopfold.errors import InvalidFile


def seed_arrays(n=4, maxlen=31):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(3):
        x = np.zeros((n, maxlen, 21), dtype=bool)
        y = np.full((n, 4 * maxlen), -3.0, dtype=np.float32)
        for i in range(n):
            L = 8 + i
            x[i, np.arange(L), rng.integers(0, 21, L)] = True
            x[i, L - 3, SEED_ALPHABET.index("TRP")] = True
            x[i, L - 3, :] = False
            x[i, L - 3, SEED_ALPHABET.index("TRP")] = True
            ang = rng.uniform(-np.pi, np.pi, (L, 2))
            t = np.stack([np.sin(ang[:, 0]), np.cos(ang[:, 0]), np.sin(ang[:, 1]), np.cos(ang[:, 1])], 1)
            t[0, :2] = (-3, 1)
            t[-1, 2:] = (0, -3)
            y[i, : 4 * L] = t.reshape(-1)
        out += [x, y]
    return tuple(out)


def test_decodes_and_undoes_leaked_mask_values(tmp_path):
    arrays = seed_arrays()
    path = tmp_path / "seed.pickle"
    path.write_bytes(pickle.dumps(arrays))
    recs = read_seed_pickle(path)
    assert len(recs) == 12 and {r.source_split for r in recs} == {"train", "validation", "test"}
    r = recs[1]
    assert len(r.window) == 9 and r.stem_c[0] == "W" and len(r.stem_c) == 3
    assert np.isnan(r.phi[0]) and np.isnan(r.psi[-1]) and np.isnan(r.omega).all()
    t = arrays[1][1].reshape(31, 4)
    assert r.phi[3] == pytest.approx(np.degrees(np.arctan2(t[3, 0], t[3, 1])), abs=1e-4)
    assert np.isfinite(r.phi[1:]).all() and np.isfinite(r.psi[:-1]).all()


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/loopfold_pwned",))


def test_hostile_pickle_refused_without_execution(tmp_path):
    path = tmp_path / "evil.pickle"
    sentinel = tmp_path / "ran"
    payload = pickle.dumps((np.zeros(2), Boom())).replace(b"/tmp/loopfold_pwned", str(sentinel).encode().ljust(19)[:19])
    path.write_bytes(payload)
    with pytest.raises(InvalidFile, match=r"evil.pickle: refused to unpickle global (posix|os)\.system"):
        load_seed_arrays(path)
    assert not sentinel.exists()


def test_wrong_content(tmp_path):
    path = tmp_path / "x.pickle"
    path.write_bytes(pickle.dumps((np.zeros(3),)))
    with pytest.raises(InvalidFile, match="six numpy arrays"):
        load_seed_arrays(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(InvalidFile, match="not a readable seed pickle"):
        load_seed_arrays(path)
