"""Benchmark outputs (the result as JSON and its tables as Markdown, side by side) and the
arguments and config update the validation-tuning benchmarks share."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def write_outputs(out: Path, stem: str, result: dict, md: str) -> str:
    """Write ``OUT/STEM.json`` and ``OUT/STEM.md``; print and return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text(md)
    print(md)
    return md


def tuning_parser(doc: str) -> argparse.ArgumentParser:
    """Arguments shared by the validation-tuning benchmarks: RUN, --data, --split, --apply, --json."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--apply", action="store_true", help="write the tuned values into RUN/config.json")
    ap.add_argument("--json", action="store_true")
    return ap


def update_config(run: Path, change: Callable[[dict], None]) -> None:
    """Apply ``change`` to RUN/config.json's document and write it back atomically."""
    from loopfold.io.atomic import write_text
    from loopfold.model.checkpoint import CONFIG

    doc = json.loads((run / CONFIG).read_text())
    change(doc)
    write_text(run / CONFIG, json.dumps(doc, indent=2) + "\n")
