"""Dataset summaries: loops per source, CDR and length; distinct sequences; redundancy."""

from __future__ import annotations

import pandas as pd


def dataset_info(df: pd.DataFrame) -> dict:
    """A JSON-ready summary of a loop dataset.

    Keys: ``n_loops``, ``n_unique_sequences``, ``redundancy`` (1 - unique/loops),
    ``max_copies`` (most repeated sequence's count), ``by_cdr``, ``by_source``,
    ``by_length`` (CDR -> length -> count), ``by_source_year`` (source -> release year or
    ``unknown`` -> structures, i.e. distinct PDB ids), ``with_coords``, ``chain_breaks``,
    ``missing_atoms``.
    """
    n = len(df)
    uniq = int(df["sequence"].nunique()) if n else 0
    by_length: dict[str, dict[str, int]] = {}
    for cdr, group in df.groupby("cdr"):
        counts = group["sequence"].str.len().value_counts().sort_index()
        by_length[str(cdr)] = {str(k): int(v) for k, v in counts.items()}
    by_year: dict[str, dict[str, int]] = {}
    if n:
        years = df["date"].fillna("unknown").astype(str).str[:4].replace("unkn", "unknown")
        firsts = df.assign(year=years).drop_duplicates(["source", "pdb_id"])
        for (src, year), count in firsts.groupby(["source", "year"]).size().items():
            by_year.setdefault(str(src), {})[str(year)] = int(count)
    return {
        "n_loops": n,
        "n_unique_sequences": uniq,
        "redundancy": round(1 - uniq / n, 4) if n else 0.0,
        "max_copies": int(df["sequence"].value_counts().max()) if n else 0,
        "by_cdr": {str(k): int(v) for k, v in df["cdr"].value_counts().sort_index().items()},
        "by_source": {str(k): int(v) for k, v in df["source"].value_counts().sort_index().items()},
        "by_length": by_length,
        "by_source_year": by_year,
        "with_coords": int(df["coords"].notna().sum()) if n else 0,
        "chain_breaks": int(df["has_chain_break"].sum()) if n else 0,
        "missing_atoms": int(df["has_missing_atoms"].sum()) if n else 0,
    }
