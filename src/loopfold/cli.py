"""The ``loopfold`` command: a thin shell over the public API.

Every LoopfoldError ends as one line on stderr and a non-zero exit (2).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loopfold.errors import LoopfoldError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Antibody CDR loop backbones from sequence.")
data_app = typer.Typer(no_args_is_help=True, help="Build, inspect and split loop datasets.")
app.add_typer(data_app, name="data")
console = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


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
    from loopfold.data.extract import ExtractOptions
    from loopfold.data.store import write_dataset

    if definition not in DEFINITIONS:
        fail(f"--definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")
    if numbering not in ("auto", "file", "sequence"):
        fail(f"--numbering {numbering!r}: expected auto, file or sequence")
    if stems < 0:
        fail(f"--stems {stems}: must be >= 0")
    src = source if source.is_dir() else source.parent
    opts = ExtractOptions(definition=definition, stems=stems, numbering=numbering, source=src.name)
    try:
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
    for cdr, n in info["by_cdr"].items():
        lengths = info["by_length"][cdr]
        table.add_row(f"{cdr}", f"{n} loops, lengths {min(map(int, lengths))}-{max(map(int, lengths))}")
    out.print(table)


@data_app.command("merge")
def data_merge(
    paths: Annotated[list[Path], typer.Argument(help="Datasets to merge.")],
    out_path: Annotated[Path, typer.Option("--out", help="Merged dataset to write.")],
) -> None:
    """Merge datasets (e.g. structures and PyIgClassify tables) into one; loop ids must stay unique."""
    from loopfold.data.store import merge_datasets

    try:
        n = merge_datasets(paths, out_path)
    except LoopfoldError as exc:
        fail(str(exc))
    out.print(f"{n} loops -> {out_path}")


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the leakage report as JSON.")] = False,
) -> None:
    """Split a dataset into train/validation/test without leaking similar loops."""
    from loopfold.data.splits import leakage_report, make_split, read_exclusions, write_split
    from loopfold.data.store import read_dataset

    if not 0 < identity <= 1:
        fail(f"--identity {identity}: must be in (0, 1]")
    try:
        df = read_dataset(path)
        excl = read_exclusions(list(exclude_ids or []))
        split = make_split(df, by, identity, fractions, seed, excl)
        report = leakage_report(df, split)
        report["settings"] = {
            "dataset": str(path),
            "by": by,
            "identity": identity,
            "fractions": list(fractions),
            "seed": seed,
            "exclude": [str(p) for p in exclude_ids or []],
        }
        write_split(out_dir, split, report)
    except (ValueError, LoopfoldError) as exc:
        fail(str(exc))
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


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset Parquet file.")],
    split: Annotated[Path, typer.Option("--split", help="Split folder (manifest.csv).")],
    run_dir: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    model: Annotated[str | None, typer.Option("--model", help="loopnet (default) | bilstm | seed-lstm.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON file of TrainConfig fields.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    no_bottleneck: Annotated[bool, typer.Option(help="seed-lstm: per-residue head instead of last step.")] = False,
    fix_backward: Annotated[bool, typer.Option(help="seed-lstm: read the backward LSTM at residue 1.")] = False,
    fix_mask: Annotated[bool, typer.Option(help="seed-lstm: do not leak the two constant targets.")] = False,
) -> None:
    """Train a model on a split's training part, stopping early on its validation part."""
    from loopfold.model.config import load_config
    from loopfold.train.loop import load_part, train_model

    overrides: dict = {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if seed is not None:
        overrides["seed"] = seed
    if no_bottleneck:
        overrides["seed_bottleneck"] = False
    if fix_backward:
        overrides["seed_backward_at_last"] = False
    if fix_mask:
        overrides["seed_leaky_mask"] = False
    try:
        cfg = load_config(config, model, overrides)
        train = load_part(data, split, "train", cfg.max_len)
        val = load_part(data, split, "validation", cfg.max_len)
        with _progress() as prog:
            task = prog.add_task(f"training {cfg.model}", total=None)
            history = train_model(
                cfg,
                train,
                val,
                run_dir,
                resume=resume,
                on_step=lambda done, total: prog.update(task, completed=done, total=total),
                info={"data": str(data), "split": str(split)},
            )
    except LoopfoldError as exc:
        fail(str(exc))
    best = min(history, key=lambda h: h["val_loss"]) if history else None
    if best:
        out.print(
            f"{cfg.model}: {len(history)} epochs, best epoch {best['epoch']} "
            f"val seed_mse {best['val_seed_mse']:.4f}; run in {run_dir}"
        )


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option("--model", help="Run folder of a trained model.")],
    data: Annotated[Path, typer.Option("--data", help="Dataset Parquet file.")],
    split: Annotated[Path | None, typer.Option("--split", help="Split folder; whole dataset when absent.")] = None,
    part: Annotated[str, typer.Option(help="train|validation|test.")] = "test",
    train_data: Annotated[Path | None, typer.Option(help="Training dataset for baselines (default --data).")] = None,
    baselines: Annotated[bool, typer.Option(help="Also score the baselines.")] = True,
    unique: Annotated[
        bool, typer.Option("--unique/--all-copies", help="Score each distinct loop window once (default).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score a model (and the baselines) on a split part: rmsd_loop, rmsd_stem, loop phi/psi MAE, seed_mse."""
    from loopfold.predict import Predictor
    from loopfold.train.evaluate import evaluate_baselines, evaluate_model, max_train_identity, unique_loops
    from loopfold.train.loop import load_part

    try:
        predictor = Predictor(model)
        cfg = predictor.cfg
        df = load_part(data, split, part, cfg.max_len)
        df = unique_loops(df) if unique else df
        train_split = split if train_data is None else None
        train = load_part(train_data or data, train_split, "train", cfg.max_len) if (split or train_data) else None
        result = {"part": part, "n_loops": len(df), "model": evaluate_model(predictor, df)}
        if train is not None:
            result["max_test_train_identity"] = max_train_identity(train, df)
            if baselines:
                result["baselines"] = evaluate_baselines(train, df, cfg.max_len)
    except LoopfoldError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table(title=f"{model} on {data} ({part}, {len(df)} loops)")
    cols = ("rmsd_loop", "rmsd_stem", "phi_mae", "psi_mae", "seed_mse", "rmsd_local")
    for col in ("predictor", *cols):
        table.add_column(col, justify="right")
    rows = {"model " + cfg.model: result["model"], **result.get("baselines", {})}
    for name, m in rows.items():
        table.add_row(name, *("-" if m[c] is None else f"{m[c]:.{3 if c == 'seed_mse' else 2}f}" for c in cols))
    out.print(table)
    if "max_test_train_identity" in result:
        out.print(f"max test-train identity: {result['max_test_train_identity']:.2f}")


def _pdb_name(name: str, used: dict[str, str]) -> str:
    """A safe file name for a record, or a LoopfoldError naming it."""
    from loopfold.errors import InvalidFile

    bad = any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "/" in name or "\\" in name
    if bad or name in ("", ".", "..") or ".." in name or name.startswith("~"):
        raise InvalidFile(f"record {name!r}: name cannot become a file name (path separator, '..' or control char)")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    key = safe.lower()
    if key in used:
        raise InvalidFile(f"records {used[key]!r} and {name!r} would both be written to {safe}.pdb")
    used[key] = name
    return safe + ".pdb"


def _predict_structure_cmd(predictor, structure: Path, loops: str | None, json_out, pdb_dir, used) -> None:  # noqa: ANN001
    """--structure: predict, close onto the stems, write the whole structure (PDB) and/or JSON."""
    from loopfold.constants import CDRS
    from loopfold.io.atomic import write_text
    from loopfold.predict import predict_structure

    wanted = None
    if loops is not None:
        wanted = [x.strip().upper() for x in loops.split(",") if x.strip()]
        bad = [x for x in wanted if x not in CDRS]
        if bad or not wanted:
            fail(f"--loops {loops!r}: expected CDR names from {', '.join(CDRS)}")
    result, pdb_text = predict_structure(predictor, structure, wanted)
    if pdb_dir is not None:
        name = structure.name
        for suffix in (".gz", ".bz2", ".pdb", ".ent", ".cif", ".mmcif"):
            name = name.removesuffix(suffix)
        write_text(pdb_dir / _pdb_name(name, used), pdb_text)
    _emit(predictor.document([result]), json_out, [pdb_dir])


def _emit(doc: dict, json_out: Path | None, other_outputs: list[Path | None]) -> None:
    """Write the JSON document to ``json_out``, or print it when no output file was asked for;
    then say what was written."""
    from loopfold.io.atomic import write_text

    others = [p for p in other_outputs if p is not None]
    if json_out is not None:
        write_text(json_out, json.dumps(doc) + "\n")
    elif not others:
        out.print_json(json.dumps(doc))
    written = [str(p) for p in ([json_out] if json_out is not None else []) + others]
    if written:
        console.print(f"wrote {', '.join(written)}")


@app.command("predict")
def predict_cmd(
    loop: Annotated[str | None, typer.Option("--loop", help="A loop sequence alone (with --cdr).")] = None,
    cdr: Annotated[str, typer.Option("--cdr", help="CDR of --loop: H1..L3.")] = "H3",
    stems: Annotated[str | None, typer.Option("--stems", help="Stems of --loop as N,C (e.g. YYC,WGQ).")] = None,
    heavy: Annotated[str | None, typer.Option("--heavy", help="Heavy chain sequence.")] = None,
    light: Annotated[str | None, typer.Option("--light", help="Light chain sequence.")] = None,
    fasta: Annotated[Path | None, typer.Option("--fasta", help="FASTA of antibodies (NAME|H, NAME|L).")] = None,
    structure: Annotated[
        Path | None, typer.Option("--structure", help="PDB/mmCIF: replace its CDR loops, keep the framework.")
    ] = None,
    loops: Annotated[str | None, typer.Option("--loops", help="With --structure: e.g. H3,L1 (default all).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write one JSON document.")] = None,
    jsonl_out: Annotated[Path | None, typer.Option("--jsonl", help="Write one JSON result per line.")] = None,
    pdb_dir: Annotated[Path | None, typer.Option("--pdb-dir", help="Write one PDB per antibody here.")] = None,
    samples: Annotated[int, typer.Option(help="Also give K distinct conformations per loop.")] = 0,
    model: Annotated[Path | None, typer.Option("--model", help="Run folder (default: the shipped model).")] = None,
) -> None:
    """Predict CDR loop backbones from sequence."""
    from loopfold.io.atomic import atomic_path, write_text
    from loopfold.io.fasta import AntibodyInput, antibodies_from_fasta
    from loopfold.predict import Predictor, loops_pdb, predict_antibodies

    given = [x is not None for x in (loop, heavy or light, fasta, structure)]
    if sum(given) != 1:
        fail("give exactly one input: --loop, --heavy/--light, --fasta or --structure")
    if samples < 0 or samples > 100:
        fail(f"--samples {samples}: must be between 0 and 100")
    try:
        predictor = Predictor(model)
        if structure is not None:
            _predict_structure_cmd(predictor, structure, loops, json_out, pdb_dir, used={})
            return
        if loop is not None:
            stem_pair = None
            if stems is not None:
                parts = stems.split(",")
                if len(parts) != 2:
                    fail(f"--stems {stems!r}: expected two sequences separated by a comma")
                stem_pair = (parts[0], parts[1])
            q = predictor.loop_query(loop, cdr, stem_pair)
            results = iter([({"id": "query", "loops": predictor.predict_queries([q], samples)}, None)])
        else:
            abs_ = antibodies_from_fasta(fasta) if fasta else [AntibodyInput("query", heavy, light)]
            results = predict_antibodies(predictor, abs_, samples)
        used: dict[str, str] = {}
        collected = []
        stack = contextlib.ExitStack()
        with stack:
            jsonl_fh = None
            if jsonl_out is not None:
                jsonl_fh = stack.enter_context(open(stack.enter_context(atomic_path(jsonl_out)), "w"))
            pdbs = []
            for res, err in results:
                if err is not None:
                    fail(err)
                if pdb_dir is not None:
                    pdbs.append((_pdb_name(res["id"], used), res))
                if jsonl_fh is not None:
                    jsonl_fh.write(json.dumps(res) + "\n")
                if json_out is not None or (jsonl_out is None and pdb_dir is None):
                    collected.append(res)
        for fname, res in pdbs:  # written once every antibody succeeded
            write_text(pdb_dir / fname, loops_pdb(res, predictor))
        _emit(predictor.document(collected), json_out, [jsonl_out, pdb_dir])
    except LoopfoldError as exc:
        fail(str(exc))


@app.command("report")
def report_cmd(
    source: Annotated[Path, typer.Argument(help="A run folder, or a prediction JSON from loopfold predict.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and index.html.")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset (needed for a run folder).")] = None,
    split: Annotated[Path | None, typer.Option("--split", help="Split folder.")] = None,
    part: Annotated[str, typer.Option(help="Split part.")] = "test",
) -> None:
    """Figures (Ramachandran, error by position, RMSD by length, training curve) and an HTML page."""
    from loopfold.report import json_report, run_report

    try:
        if source.is_dir():
            if data is None:
                fail("a run folder needs --data (and usually --split) to compare with true loops")
            summary = run_report(source, data, split, part, out_dir)
        else:
            summary = json_report(source, out_dir)
    except LoopfoldError as exc:
        fail(str(exc))
    out.print(f"report: {out_dir / 'index.html'} ({summary['n_loops']} loops)")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except LoopfoldError as exc:  # safety net: commands catch their own
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
