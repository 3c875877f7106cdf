"""Benchmark outputs: the result as JSON and its tables as Markdown, side by side."""

from __future__ import annotations

import json
from pathlib import Path


def write_outputs(out: Path, stem: str, result: dict, md: str) -> str:
    """Write ``OUT/STEM.json`` and ``OUT/STEM.md``; print and return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text(md)
    print(md)
    return md
