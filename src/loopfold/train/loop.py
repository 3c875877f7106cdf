"""``loopfold train``: deterministic training with early stopping, resume and a metrics log.

A run folder holds ``model.safetensors`` + ``config.json`` (best weights so far),
``state.pt`` (the latest finished epoch: weights, optimiser, scheduler, RNG
state, history, best score), ``metrics.jsonl`` and ``curve.png``. ``--resume``
continues from ``state.pt``; since every epoch's shuffling and dropout come
from saved or epoch-derived random state, a killed run resumed ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import torch

from loopfold.errors import CheckpointError, InvalidFile
from loopfold.evaluate.curves import plot_curve
from loopfold.io.atomic import atomic_path, write_text
from loopfold.model.checkpoint import save_model
from loopfold.model.config import TrainConfig
from loopfold.model.features import Batch, batch_from_frame
from loopfold.model.losses import fit_bins, masked_mse, training_loss
from loopfold.model.networks import build_network
from loopfold.model.templates import TEMPLATES, TemplateLibrary

STATE = "state.pt"
METRICS = "metrics.jsonl"
#: What a run folder holds (training writes the first ones; a model folder adds the last two).
RUN_FILES = ("config.json", "model.safetensors", STATE, METRICS, "templates.safetensors", "training_loops.csv",
             "curve.png", "frameworks.npz", "members")  # fmt: skip


def clear_run(folder: Path) -> None:
    """Remove an earlier run's files from ``folder`` (``train --force``); other files are left."""
    import shutil

    for name in RUN_FILES:
        p = Path(folder) / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.is_file() or p.is_symlink():
            p.unlink()


def bin_centers(train: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    """The Ramachandran bin centres of a run (k-means on the training loops' angles)."""
    phi = np.concatenate([np.asarray(v) for v in train["phi"]])
    psi = np.concatenate([np.asarray(v) for v in train["psi"]])
    return fit_bins(phi, psi, cfg.n_bins, cfg.seed)


def _set_bins(model: torch.nn.Module, train: pd.DataFrame, cfg: TrainConfig) -> None:
    if hasattr(model, "bin_centers"):
        cast(torch.Tensor, model.bin_centers).copy_(torch.from_numpy(bin_centers(train, cfg)))


def _objective(out: dict, batch: Batch, cfg: TrainConfig, leaky: bool = False) -> torch.Tensor:
    """The model's training objective (the seed's leaky mask only when ``leaky``)."""
    if cfg.model == "fvnet":
        from loopfold.model.fvnet import fv_loss

        return fv_loss(out, batch, cfg)
    return training_loss(out, batch, leaky, cfg.bin_weight, cfg.cis_weight)


def _val_score(model: torch.nn.Module, val: Batch, cfg: TrainConfig) -> tuple[float, float]:
    """(objective, seed_mse with correct masks) on the validation batch."""
    model.eval()
    with torch.no_grad():
        total, mse, n = 0.0, 0.0, len(val.lengths)
        for lo in range(0, n, 256):
            b = val.subset(torch.arange(lo, min(n, lo + 256)))
            out = model(**b.inputs())
            w = len(b.lengths) / n
            total += w * float(_objective(out, b, cfg))
            mse += w * float(masked_mse(out["sincos"], b.target, b.target_mask))
    return total, mse


def training_batches(
    cfg: TrainConfig, train: pd.DataFrame, val: pd.DataFrame
) -> tuple[Batch, Batch, TemplateLibrary, Batch | None]:
    """Training and validation batches, the template library (training part) and, for fvnet, the
    training batch's strict view (every template >= 70% identical to a loop hidden from it)."""
    library = TemplateLibrary.from_frame(train)  # training part only: validation stays unseen
    if cfg.model != "fvnet":
        return batch_from_frame(train, cfg.max_len), batch_from_frame(val, cfg.max_len), library, None
    from loopfold.model.context import number_chains
    from loopfold.model.fv_inputs import frame_batch, strict_templates
    from loopfold.model.template_input import STRICT_CAP
    from loopfold.model.template_targets import candidate_targets

    both = pd.concat([train, val])
    numbered = number_chains(both["chain_sequence"].tolist() + both.get("partner_sequence", pd.Series([])).tolist())
    centers = bin_centers(train, cfg)

    def targets(df: pd.DataFrame, cap: float | None = None) -> dict:
        return {k: torch.from_numpy(v) for k, v in candidate_targets(df, library, centers, cfg.max_len, cap).items()}

    tb = replace(frame_batch(train, cfg.max_len, library, numbered, coords=True)[0], **targets(train))
    vb = replace(frame_batch(val, cfg.max_len, library, numbered, coords=True)[0], **targets(val))
    strict = replace(tb, templates=torch.from_numpy(strict_templates(train, cfg.max_len, library)),
                     **targets(train, STRICT_CAP))  # fmt: skip
    return tb, vb, library, strict


def augment(batch: Batch, strict: Batch | None, rng: np.random.Generator) -> Batch:
    """FvNet training views: half the rows see only templates < 70% identical (as input and as
    candidates), 15% no Fv context, 10% no template input (so held-out loops, lone ``--loop``
    queries and new CDR lengths are all seen)."""
    if strict is None or batch.templates is None:
        return batch
    b = len(batch.lengths)
    pick = torch.from_numpy(rng.random(b) < 0.5)
    swap = {k: torch.where(pick.view(-1, *[1] * (getattr(batch, k).dim() - 1)), getattr(strict, k), getattr(batch, k))
            for k in ("templates", "cand_bins", "cand_ident", "cand_rmsd")}  # fmt: skip
    templates = swap.pop("templates") * torch.from_numpy(rng.random(b) >= 0.1).float()[:, None, None]
    no_ctx = torch.from_numpy(rng.random(b) < 0.15)
    from loopfold.model.context import GAP, NO_SLOT

    assert batch.context is not None and batch.slots is not None  # set with templates (fv_inputs.with_fv)
    context = torch.where(no_ctx[:, None], torch.full_like(batch.context, GAP), batch.context)
    slots = torch.where(no_ctx[:, None], torch.full_like(batch.slots, NO_SLOT), batch.slots)
    return replace(batch, templates=templates, context=context, slots=slots, **swap)


def train_model(
    cfg: TrainConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    out_dir: str | Path,
    resume: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    info: dict | None = None,
) -> list[dict]:
    """Train ``cfg.model`` on ``train``, stop early on ``val``; returns the per-epoch history.

    Raises:
        CheckpointError: ``resume`` without a usable ``state.pt``.
        InvalidFile: empty training or validation data.
    """
    if len(train) == 0 or len(val) == 0:
        raise InvalidFile(f"need training and validation loops, got {len(train)} and {len(val)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tb, vb, library, strict = training_batches(cfg, train, val)
    model = build_network(cfg)
    _set_bins(model, train, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, cfg.patience // 3))
    history: list[dict] = []
    best, bad_epochs, start = float("inf"), 0, 0
    if resume:
        try:
            st = torch.load(out / STATE, weights_only=True)  # tensors and plain data only: never code
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            torch.set_rng_state(st["rng"])
            history, best, bad_epochs, start = st["history"], st["best"], st["bad_epochs"], st["epoch"]
        except (OSError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"{out / STATE}: cannot resume ({why})") from None
        if st["config"] != asdict(cfg):
            raise CheckpointError(f"{out / STATE}: saved with a different config; cannot resume")
    info = {**run_info(train), **(info or {})}
    write_manifest(out / "training_loops.csv", pd.concat([train, val]))
    n = len(train)
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(start, cfg.epochs):
        if bad_epochs >= cfg.patience:
            break
        t0 = time.perf_counter()
        model.train()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
        views = np.random.default_rng([cfg.seed, epoch, 1])
        total = 0.0
        for s in range(steps):
            idx = torch.from_numpy(order[s * cfg.batch_size : (s + 1) * cfg.batch_size])
            b = augment(tb.subset(idx), None if strict is None else strict.subset(idx), views)
            loss = _objective(model(**b.inputs()), b, cfg, _leaky(cfg))
            if not torch.isfinite(loss):  # a degenerate structure (e.g. an SVD at coinciding values): skip
                continue
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            total += float(loss.detach()) * len(idx)
            if on_step is not None:
                on_step(epoch * steps + s + 1, cfg.epochs * steps)
        val_loss, val_mse = _val_score(model, vb, cfg)
        sched.step(val_loss)
        rec = {
            "epoch": epoch + 1, "train_loss": total / n, "val_loss": val_loss, "val_seed_mse": val_mse,
            "lr": opt.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 3),
        }  # fmt: skip
        history.append(rec)
        if val_loss < best - 1e-6:
            best, bad_epochs = val_loss, 0
            save_model(
                out,
                model,
                cfg,
                {
                    **info,
                    "epoch": epoch + 1,
                    "val_loss": val_loss,
                    "val_seed_mse": val_mse,
                    "n_train": n,
                    "n_val": len(val),
                },
            )
        else:
            bad_epochs += 1
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                 "rng": torch.get_rng_state(), "history": history, "best": best, "bad_epochs": bad_epochs,
                 "epoch": epoch + 1, "config": asdict(cfg)}  # fmt: skip
        with atomic_path(out / STATE) as tmp:
            torch.save(state, tmp)
        write_text(out / METRICS, "".join(json.dumps(h) + "\n" for h in history))
    if library.groups:
        library.save(out / TEMPLATES)
    _calibrate(out, vb, cfg)
    from loopfold.evaluate.error_fit import fit_run_error_model, select_output

    if cfg.model == "fvnet":
        select_output(out, val)
    fit_run_error_model(out, val)
    plot_curve(history, out / "curve.png")
    return history


def _calibrate(out: Path, vb: Batch, cfg: TrainConfig) -> None:
    """Fit the bin-probability temperature on validation residues and store it with the best model."""
    from loopfold.model.calibration import fit_temperature
    from loopfold.model.checkpoint import load_model
    from loopfold.model.decode import run_network
    from loopfold.model.losses import assign_bins

    model, _, info = load_model(out)
    pred = run_network(model, vb)
    if "bin_probs" not in pred:
        return
    labels, ok = assign_bins(vb.angles, cast(torch.Tensor, model.bin_centers))
    sel = ok.numpy().astype(bool) & vb.pad_mask.numpy()
    info["bin_temperature"] = fit_temperature(pred["bin_probs"][sel], labels.numpy()[sel])
    save_model(out, model, cfg, info)


def run_info(train: pd.DataFrame) -> dict:
    """What a predictor needs to know of its training data: definition, stems, typical stems per CDR."""
    stems = int(train["stem_n"].str.len().mode().iloc[0]) if len(train) else 0
    default = {}
    for cdr, g in train.groupby("cdr"):
        default[str(cdr)] = [str(g["stem_n"].mode().iloc[0]), str(g["stem_c"].mode().iloc[0])]
    return {"definition": str(train["definition"].mode().iloc[0]), "stems": stems, "default_stems": default}


def write_manifest(path: Path, loops: pd.DataFrame) -> None:
    """``loop_id, pdb_id, cdr, sequence`` of every loop the model learnt from (train + validation)."""
    cols = loops[["loop_id", "pdb_id", "cdr", "sequence"]]
    with atomic_path(path) as tmp:
        cols.to_csv(tmp, index=False)


def _leaky(cfg: TrainConfig) -> bool:
    return cfg.model == "seed-lstm" and cfg.seed_leaky_mask
