"""``loopfold data``: build, inspect, merge and split loop datasets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loopfold.cli import _progress, console, data_app, fail, out
from loopfold.errors import LoopfoldError


@data_app.command("build")
def data_build(
    source: Annotated[
        Path, typer.Argument(help="Folder of structures, PyIgClassify csv folder, seed pickle or RAB JSON.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Dataset Parquet file to write.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="pdb|pyigclassify|seed-pickle|rab-json (detected if absent).")
    ] = None,
    definition: Annotated[str, typer.Option(help="CDR definition: chothia|imgt|north.")] = "north",
    stems: Annotated[int, typer.Option(help="Stem residues each side of a loop.")] = 3,
    numbering: Annotated[
        str,
        typer.Option(help="sequence|file|auto: number sequences (validated; as predict does) or trust file numbers."),
    ] = "sequence",
    workers: Annotated[int, typer.Option(help="Processes for structure folders.")] = max(1, os.cpu_count() or 1),
    strict: Annotated[bool, typer.Option(help="Stop at the first unusable file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
) -> None:
    """Build a loop dataset from a source."""
    from loopfold.constants import DEFINITIONS
    from loopfold.data.build import build_dataset
    from loopfold.data.extract import ExtractOptions, source_name
    from loopfold.data.store import write_dataset

    if definition not in DEFINITIONS:
        fail(f"--definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")
    if numbering not in ("auto", "file", "sequence"):
        fail(f"--numbering {numbering!r}: expected auto, file or sequence")
    if stems < 0:
        fail(f"--stems {stems}: must be >= 0")
    src = source if source.is_dir() else source.parent
    opts = ExtractOptions(definition=definition, stems=stems, numbering=numbering, source=source_name(src))
    try:
        from loopfold.io.outputs import check_outputs

        check_outputs({"SOURCE": source}, {"--out": out_path}, {})
        with _progress() as prog:
            task = prog.add_task(f"reading {source.name}", total=None)
            records, report = build_dataset(
                source,
                fmt,
                opts,
                workers=workers,
                strict=strict,
                progress=lambda done, total: prog.update(task, completed=done, total=total),
            )
        if not records:
            fail(f"{source}: no loops found ({sum(report.skipped.values())} items skipped)")
        write_dataset(out_path, records)
    except LoopfoldError as exc:
        fail(str(exc))
    summary = report.to_dict()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    table = Table(title=f"{source} -> {out_path}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files read", str(report.files_read))
    table.add_row("files unusable", str(len(report.files_failed)))
    table.add_row("loops kept", str(report.loops_kept))
    for reason, count in report.skipped.most_common():
        table.add_row(f"skipped: {reason}", str(count))
    out.print(table)


@data_app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="Dataset Parquet file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a dataset: loops per source, CDR and length; redundancy."""
    from loopfold.data.info import dataset_info
    from loopfold.data.store import read_dataset

    try:
        info = dataset_info(read_dataset(path))
    except LoopfoldError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(title=str(path))
    table.add_column("key")
    table.add_column("value")
    for key in (
        "n_loops",
        "n_unique_sequences",
        "redundancy",
        "max_copies",
        "with_coords",
        "chain_breaks",
        "missing_atoms",
    ):
        table.add_row(key, str(info[key]))
    table.add_row("by_source", ", ".join(f"{k}: {v}" for k, v in info["by_source"].items()))
    for src, years in info["by_source_year"].items():
        table.add_row(f"{src} structures by year", ", ".join(f"{y}: {c}" for y, c in years.items()))
    for cdr, n in info["by_cdr"].items():
        lengths = info["by_length"][cdr]
        table.add_row(f"{cdr}", f"{n} loops, lengths {min(map(int, lengths))}-{max(map(int, lengths))}")
    out.print(table)


@data_app.command("merge")
def data_merge(
    paths: Annotated[list[Path], typer.Argument(help="Datasets to merge.")],
    out_path: Annotated[Path, typer.Option("--out", help="Merged dataset to write.")],
    dedupe: Annotated[
        bool, typer.Option(help="Drop a later input's structures with a PDB id or chain sequence an earlier one has.")
    ] = False,
) -> None:
    """Merge datasets (e.g. structures and PyIgClassify tables) into one; loop ids must stay unique."""
    from loopfold.data.store import merge_datasets

    try:
        from loopfold.io.outputs import check_outputs

        check_outputs({f"input {i + 1}": p for i, p in enumerate(paths)}, {"--out": out_path}, {})
        n, report = merge_datasets(paths, out_path, dedupe)
    except LoopfoldError as exc:
        fail(str(exc))
    dropped = "" if report is None else (
        f" ({report.dropped_loops} loops of {sum(report.dropped_structures.values())} duplicate structures dropped: "
        + ", ".join(f"{k} {v}" for k, v in report.dropped_structures.items()) + ")")
    out.print(f"{n} loops -> {out_path}{dropped}", highlight=False)


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="Dataset Parquet file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for manifest.csv and split.json.")],
    by: Annotated[str, typer.Option(help="cluster|random|date.")] = "cluster",
    identity: Annotated[float, typer.Option(help="Identity threshold for clusters and exclusion.")] = 0.7,
    fractions: Annotated[tuple[float, float, float], typer.Option(help="Train, validation, test fractions.")] = (
        0.7,
        0.2,
        0.1,
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    exclude_ids: Annotated[
        list[Path] | None,
        typer.Option("--exclude-ids", help="PDB id lists or benchmark datasets to keep out of every part."),
    ] = None,
    test_from: Annotated[
        str | None,
        typer.Option("--test-from", help="Time split (ISO date): loops released from then are the test part, older "
                     "loops as identical as --identity to one of them are excluded, the rest split by cluster."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the leakage report as JSON.")] = False,
) -> None:
    """Split a dataset into train/validation/test without leaking similar loops."""
    from loopfold.data.splits import leakage_report, make_split, read_exclusions, write_split
    from loopfold.data.store import read_dataset

    if not 0 < identity <= 1:
        fail(f"--identity {identity}: must be in (0, 1]")
    if test_from is not None:
        from loopfold.io.pdb import iso_date

        if iso_date(test_from) != test_from:
            fail(f"--test-from {test_from!r}: expected an ISO date (YYYY-MM-DD)")
    try:
        from loopfold.io.outputs import check_outputs

        check_outputs({"dataset": path}, {}, {"--out": out_dir})
        df = read_dataset(path)
        excl = read_exclusions(list(exclude_ids or []))
        split = make_split(df, by, identity, fractions, seed, excl, test_from)
        report = leakage_report(df, split)
        report["settings"] = {
            "dataset": str(path),
            "by": by,
            "identity": identity,
            "fractions": list(fractions),
            "seed": seed,
            "test_from": test_from,
            "exclude": [str(p) for p in exclude_ids or []],
        }
        write_split(out_dir, split, report)
    except (ValueError, LoopfoldError) as exc:
        fail(str(exc))
    empty = [p for p in ("train", "validation", "test") if fractions[("train", "validation", "test").index(p)] > 0
             and report["sizes"][p] == 0]  # fmt: skip
    if empty:
        report["warnings"] = [f"part {p!r} is empty ({sum(report['sizes'].values())} loops)" for p in empty]
        for w in report["warnings"]:
            console.print(f"warning: {w}", highlight=False)
    if as_json:
        out.print_json(json.dumps(report))
        return
    table = Table(title=f"{by} split of {path} at {identity:.0%} identity")
    for col in ("CDR", "train", "validation", "test", "clusters", "max test-train id"):
        table.add_column(col)
    for cdr, e in report["by_cdr"].items():
        table.add_row(
            cdr,
            str(e["train"]),
            str(e["validation"]),
            str(e["test"]),
            str(e["clusters"]),
            f"{e['max_test_train_identity']:.2f}",
        )
    out.print(table)
    out.print(f"sizes {report['sizes']}; max test-train identity {report['max_test_train_identity']:.2f}")




@data_app.command("frameworks")
def data_frameworks(
    sources: Annotated[
        list[Path], typer.Argument(help="Folders of structures (the Rosetta antibody database, sabdab_extra).")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Framework library to write (.npz).")],
    exclude_ids: Annotated[
        list[Path] | None,
        typer.Option("--exclude-ids", help="PDB id lists or benchmark datasets whose antibodies stay out."),
    ] = None,
    identity: Annotated[float, typer.Option(help="CDR-H3 identity that makes a structure the same antibody.")] = 0.7,
    workers: Annotated[int, typer.Option(help="Processes.")] = max(1, os.cpu_count() or 1),
    test_from: Annotated[
        str | None,
        typer.Option("--test-from", help="Time split (ISO date): leave out structures released from then on and "
                     "every structure whose CDR-H3 is as identical as --identity to one of theirs."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
) -> None:
    """Build the framework library whole-Fv models are assembled from."""
    from loopfold.data.splits import read_exclusions
    from loopfold.fv.library_build import build_library
    from loopfold.io.outputs import check_outputs

    if not 0 < identity <= 1:
        fail(f"--identity {identity}: must be in (0, 1]")
    for source in sources:
        if not source.is_dir():
            fail(f"{source}: not a folder of structures")
    if test_from is not None:
        from loopfold.io.pdb import iso_date

        if iso_date(test_from) != test_from:
            fail(f"--test-from {test_from!r}: expected an ISO date (YYYY-MM-DD)")
    try:
        check_outputs({**{f"SOURCE {s}": s for s in sources}, **{f"--exclude-ids {p}": p for p in exclude_ids or []}},
                      {"--out": out_path}, {})  # fmt: skip
        excl = read_exclusions(list(exclude_ids or [])) if exclude_ids else None
        lib, report = build_library(list(sources), excl, identity, workers, test_from=test_from)
        lib.save(os.path.realpath(out_path))
    except LoopfoldError as exc:
        fail(str(exc))
    _print_report(report, as_json)


@data_app.command("template-frames")
def data_template_frames(
    run: Annotated[Path, typer.Argument(help="Run folder whose templates get their frameworks.")],
    sources: Annotated[
        list[Path], typer.Argument(help="Folders of the structures the templates were cut from.")
    ],
    out_path: Annotated[Path | None, typer.Option("--out", help="File to write (default RUN/template_frames.npz).")
                        ] = None,  # fmt: skip
    workers: Annotated[int, typer.Option(help="Processes.")] = max(1, os.cpu_count() or 1),
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
) -> None:
    """Keep each template loop's own framework, so whole-Fv models place the loop by it."""
    from loopfold.fv.template_frames import FRAMES_FILE, build_frames
    from loopfold.io.outputs import check_outputs
    from loopfold.model.templates import TEMPLATES, TemplateLibrary

    for source in sources:
        if not source.is_dir():
            fail(f"{source}: not a folder of structures")
    target = out_path if out_path is not None else run / FRAMES_FILE
    try:
        check_outputs({"RUN templates": run / TEMPLATES, **{f"SOURCE {s}": s for s in sources}}, {"--out": target}, {})
        frames, report = build_frames(TemplateLibrary.load(run / TEMPLATES), list(sources), workers)
        frames.save(os.path.realpath(target))
    except LoopfoldError as exc:
        fail(str(exc))
    _print_report(report, as_json)


def _print_report(report: dict, as_json: bool) -> None:
    """A build report as JSON or as one line of counts."""
    if as_json:
        out.print_json(json.dumps(report))
    else:
        out.print(", ".join(f"{k} {v}" for k, v in report.items()), highlight=False)
