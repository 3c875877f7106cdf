"""Train/validation/test splits that keep similar loops together, and a leakage report.

``cluster``: single-linkage clusters at ``identity`` per CDR, whole clusters
assigned to parts. ``random``: loops assigned at random (leaky on redundant
data; kept to show the leak). ``date``: the newest loops are the test part;
older loops >= ``identity`` to a newer part's loop are removed. Benchmark
loops (by PDB id, and by identity >= the threshold to any benchmark loop of
the same CDR, the dataset's own loops of those ids included) go to the part
``excluded``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.data.identity import max_identity, single_linkage_clusters
from loopfold.data.recut import containment_identity, recut_sequences
from loopfold.data.store import read_dataset
from loopfold.errors import InvalidFile
from loopfold.io.atomic import atomic_path, write_text

PARTS = ("train", "validation", "test")
MANIFEST = "manifest.csv"
REPORT = "split.json"


@dataclass(frozen=True)
class Exclusions:
    """Benchmark PDB ids (lower case) and benchmark loop sequences per (CDR definition, CDR)."""

    pdb_ids: frozenset[str]
    sequences: dict[tuple[str, str], list[str]]


def read_exclusions(paths: list[str | os.PathLike[str]]) -> Exclusions:
    """Read exclusion files: loop datasets (Parquet: ids and sequences) or id lists.

    An id list has one PDB id per line (first comma/space-separated field);
    comment lines (``#``) and fields that are not 4-character ids are skipped.
    """
    ids: set[str] = set()
    seqs: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise InvalidFile(f"{p}: exclusion file not found")
        if p.read_bytes()[:4] == b"PAR1":
            df = read_dataset(p)
            ids.update(str(x).lower()[:4] for x in df["pdb_id"].dropna())
            for (definition, cdr), group in df.groupby(["definition", "cdr"]):
                seqs.setdefault((str(definition), str(cdr)), []).extend(group["sequence"].tolist())
            continue
        raw = p.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = ""
        if b"\x00" in raw or not text:
            raise InvalidFile(f"{p}: not a text list of PDB ids (nor a loop dataset)")
        for line in text.splitlines():
            field = line.replace(",", " ").split()[0] if line.strip() else ""
            if field and not field.startswith("#") and len(field) == 4 and field[0].isdigit():
                ids.add(field.lower())
    return Exclusions(frozenset(ids), seqs)


def similar_to_exclusions(df: pd.DataFrame, exclusions: Exclusions, identity: float) -> np.ndarray:
    """Rows whose loop is >= ``identity`` identical to a benchmark loop of the same CDR, compared
    under the benchmark's CDR definition (rows cut under another one are re-cut, see
    :mod:`loopfold.data.recut`)."""
    close = np.zeros(len(df), dtype=bool)
    own = df["definition"].to_numpy()
    recut: dict[str, list[str | None]] = {}
    for (definition, cdr), refs in exclusions.sequences.items():
        idx = np.nonzero((df["cdr"] == cdr).to_numpy())[0]
        if not refs or not len(idx):
            continue
        same = idx[own[idx] == definition]
        close[same] |= max_identity(df["sequence"].iloc[same].tolist(), refs) >= identity
        other = idx[own[idx] != definition]
        if len(other):
            if definition not in recut:
                recut[definition] = recut_sequences(df, definition)
            cut = [recut[definition][i] for i in other]
            has = np.array([c is not None for c in cut], dtype=bool)
            close[other[has]] |= max_identity([c for c in cut if c is not None], refs) >= identity
            rest = other[~has]
            close[rest] |= containment_identity(df["sequence"].iloc[rest].tolist(), refs) >= identity
    return close


def _assign_clusters(labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Part index (0 train, 1 validation, 2 test) per item, whole clusters at a time."""
    n = len(labels)
    cluster_ids, sizes = np.unique(labels, return_counts=True)
    order = rng.permutation(len(cluster_ids))
    targets = [fractions[2] * n, fractions[1] * n]  # fill test first, then validation
    filled = [0, 0]
    part_of_cluster = np.zeros(len(cluster_ids), dtype=int)
    for k in order:
        for slot, part in ((0, 2), (1, 1)):
            if filled[slot] + sizes[k] <= targets[slot] + 0.5:
                part_of_cluster[k] = part
                filled[slot] += sizes[k]
                break
    lookup = dict(zip(cluster_ids.tolist(), part_of_cluster.tolist(), strict=True))
    return np.array([lookup[x] for x in labels.tolist()], dtype=int)


def make_split(
    df: pd.DataFrame,
    by: str = "cluster",
    identity: float = 0.7,
    fractions: tuple[float, float, float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    exclusions: Exclusions | None = None,
    test_from: str | None = None,
) -> pd.DataFrame:
    """Assign each loop a part; returns ``loop_id, cdr, part, cluster``.

    ``test_from`` (ISO date, with ``by="cluster"``): a time split. Loops released on or after it are
    the test part; older loops >= ``identity`` identical to a test loop of their CDR are excluded;
    the rest is split by cluster into train and validation in the ratio of the first two fractions.
    Loops without a date count as older.

    Raises:
        ValueError: fractions that are negative or do not sum to 1, or an unknown ``by``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    if by not in ("cluster", "random", "date"):
        raise ValueError(f"unknown split kind {by!r}; expected cluster, random or date")
    if test_from is not None and by != "cluster":
        raise ValueError("a test_from date needs by='cluster'")
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({"loop_id": df["loop_id"], "cdr": df["cdr"]})
    out["part"] = ""
    out["cluster"] = ""
    excluded = np.zeros(len(df), dtype=bool)
    if exclusions is not None:
        pdb = df["pdb_id"].fillna("").str.lower().str[:4]
        by_id = pdb.isin(exclusions.pdb_ids).to_numpy() & (pdb != "").to_numpy()
        excluded |= by_id
        # loops of the excluded ids are benchmark loops too, cut under this dataset's definition
        refs = {k: list(v) for k, v in exclusions.sequences.items()}
        for (definition, cdr), g in df[by_id].groupby(["definition", "cdr"]):
            refs.setdefault((str(definition), str(cdr)), []).extend(g["sequence"].tolist())
        excluded |= similar_to_exclusions(df, Exclusions(exclusions.pdb_ids, refs), identity)
    recent = np.zeros(len(df), dtype=bool)
    if test_from is not None:
        recent = (df["date"].fillna("0000-00-00").astype(str) >= test_from).to_numpy() & ~excluded
        for _cdr, idx in df.groupby("cdr").indices.items():
            new, old = idx[recent[idx]], idx[~recent[idx] & ~excluded[idx]]
            if len(new) and len(old):
                close = max_identity(df["sequence"].iloc[old].tolist(), df["sequence"].iloc[new].tolist()) >= identity
                excluded[old[close]] = True
        total = fractions[0] + fractions[1]
        fractions = (fractions[0] / total, fractions[1] / total, 0.0) if total > 0 else (1.0, 0.0, 0.0)
    for cdr, idx in df.groupby("cdr").indices.items():
        idx = idx[~excluded[idx]]
        if len(idx) == 0:
            continue
        seqs = df["sequence"].iloc[idx].tolist()
        labels = single_linkage_clusters(seqs, identity)
        out.loc[out.index[idx], "cluster"] = [f"{cdr}-{x}" for x in labels]
        if by == "cluster":
            parts = np.where(recent[idx], 2, 0)
            older = ~recent[idx]
            if older.any():
                parts[older] = _assign_clusters(labels[older], fractions, rng)
        elif by == "random":
            parts = rng.choice(3, size=len(idx), p=[fractions[0], fractions[1], fractions[2]])
        else:
            dates = df["date"].iloc[idx].fillna("0000-00-00").to_numpy()
            order = np.argsort(dates, kind="stable")
            cut1 = int(round(fractions[0] * len(idx)))
            cut2 = int(round((fractions[0] + fractions[1]) * len(idx)))
            parts = np.zeros(len(idx), dtype=int)
            parts[order[cut1:cut2]] = 1
            parts[order[cut2:]] = 2
            # drop older loops too similar to a newer part's loops
            for newer in (2, 1):
                ref = [s for s, p in zip(seqs, parts, strict=True) if p == newer]
                older = np.nonzero(parts < newer)[0]
                close = max_identity([seqs[i] for i in older], ref) >= identity
                parts[older[close]] = -1
        names = (
            np.array(["excluded", *PARTS])[np.asarray(parts) + 1]
            if by == "date"
            else (np.array(PARTS)[np.asarray(parts)])
        )
        out.loc[out.index[idx], "part"] = names
    out.loc[excluded, "part"] = "excluded"
    return out


def leakage_report(df: pd.DataFrame, split: pd.DataFrame) -> dict:
    """Sizes and the highest identity of test/validation loops to training loops, per CDR."""
    merged = split.assign(sequence=df["sequence"].to_numpy())
    sizes = {p: int((merged["part"] == p).sum()) for p in (*PARTS, "excluded")}
    per_cdr = {}
    overall = {"test": 0.0, "validation": 0.0}
    for cdr, group in merged.groupby("cdr"):
        train = group.loc[group["part"] == "train", "sequence"].tolist()
        entry: dict[str, int | float] = {p: int((group["part"] == p).sum()) for p in PARTS}
        for part in ("test", "validation"):
            seqs = group.loc[group["part"] == part, "sequence"].tolist()
            m = float(max_identity(seqs, train).max()) if seqs and train else 0.0
            entry[f"max_{part}_train_identity"] = round(m, 4)
            overall[part] = max(overall[part], m)
        entry["clusters"] = int(group.loc[group["part"] != "excluded", "cluster"].nunique())
        per_cdr[str(cdr)] = entry
    return {
        "sizes": sizes,
        "max_test_train_identity": round(overall["test"], 4),
        "max_validation_train_identity": round(overall["validation"], 4),
        "by_cdr": per_cdr,
    }


def write_split(out_dir: str | os.PathLike[str], split: pd.DataFrame, report: dict) -> None:
    """Write ``manifest.csv`` (loop_id, cdr, part, cluster) and ``split.json`` atomically."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / MANIFEST) as tmp:
        split.to_csv(tmp, index=False)
    write_text(d / REPORT, json.dumps(report, indent=2) + "\n")


def read_split(split_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The manifest of a split folder.

    Raises:
        InvalidFile: the folder has no readable manifest.
    """
    path = Path(split_dir) / MANIFEST
    try:
        split = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidFile(f"{path}: not a split manifest ({exc})") from None
    if not {"loop_id", "part"} <= set(split.columns):
        raise InvalidFile(f"{path}: manifest lacks loop_id/part columns")
    return split
