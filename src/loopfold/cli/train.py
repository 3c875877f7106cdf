"""``loopfold train``, ``evaluate`` and ``report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loopfold.cli import _progress, app, fail, out
from loopfold.errors import LoopfoldError


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
    force: Annotated[bool, typer.Option(help="Train afresh in --out, replacing the run there.")] = False,
    no_bottleneck: Annotated[bool, typer.Option(help="seed-lstm: per-residue head instead of last step.")] = False,
    fix_backward: Annotated[bool, typer.Option(help="seed-lstm: read the backward LSTM at residue 1.")] = False,
    fix_mask: Annotated[bool, typer.Option(help="seed-lstm: do not leak the two constant targets.")] = False,
) -> None:
    """Train a model on a split's training part, stopping early on its validation part."""
    from loopfold.model.config import load_config
    from loopfold.model.dataset import load_part
    from loopfold.train.loop import train_model

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
    from loopfold.io.outputs import check_outputs
    from loopfold.train.loop import RUN_FILES, clear_run

    if force and resume:
        fail("--force trains afresh, --resume continues the run: give one")
    try:
        check_outputs({"--data": data, "--split": split, "--config": config}, {}, {},
                      {"--out": (run_dir, resume or force, RUN_FILES)})  # fmt: skip
        if force:
            clear_run(run_dir)
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
    from loopfold.evaluate.scores import evaluate_baselines, evaluate_model, max_train_identity, unique_loops
    from loopfold.model.dataset import load_part
    from loopfold.pipeline.predictor import Predictor

    try:
        predictor = Predictor(model)
        cfg = predictor.cfg
        df = load_part(data, split, part, cfg.max_len)
        df = unique_loops(df) if unique else df
        train_split = split if train_data is None else None
        train = load_part(train_data or data, train_split, "train", cfg.max_len) if (split or train_data) else None
        result: dict[str, Any] = {"part": part, "n_loops": len(df), "model": evaluate_model(predictor, df)}
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



@app.command("report")
def report_cmd(
    source: Annotated[Path, typer.Argument(help="A run folder, or a prediction JSON from loopfold predict.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and index.html.")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset (needed for a run folder).")] = None,
    split: Annotated[Path | None, typer.Option("--split", help="Split folder.")] = None,
    part: Annotated[str, typer.Option(help="Split part.")] = "test",
) -> None:
    """Figures (Ramachandran, error by position, RMSD by length, training curve) and an HTML page."""
    from loopfold.evaluate.report import json_report, run_report
    from loopfold.io.outputs import check_outputs
    from loopfold.train.loop import RUN_FILES

    # a run folder is read file by file (a report inside it, RUN/report, is where one expects it)
    reads = {f"SOURCE {p}": p for p in sorted(source.glob("*")) if any(p.match(f) for f in RUN_FILES)
             } if source.is_dir() else {"SOURCE": source}  # fmt: skip
    try:
        check_outputs({**reads, "--data": data, "--split": split}, {}, {"--out": out_dir})
        if source.is_dir():
            if data is None:
                fail("a run folder needs --data (and usually --split) to compare with true loops")
            summary = run_report(source, data, split, part, out_dir)
        else:
            summary = json_report(source, out_dir)
    except LoopfoldError as exc:
        fail(str(exc))
    out.print(f"report: {out_dir / 'index.html'} ({summary['n_loops']} loops)")


