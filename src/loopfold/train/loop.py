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
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopfold.constants import AMINO_ACIDS
from loopfold.data.splits import read_split
from loopfold.data.store import read_dataset
from loopfold.errors import CheckpointError, InvalidFile
from loopfold.io.atomic import atomic_path, write_text
from loopfold.model.checkpoint import save_model
from loopfold.model.config import TrainConfig
from loopfold.model.features import Batch, batch_from_frame
from loopfold.model.losses import fit_bins, masked_mse, training_loss
from loopfold.model.networks import build_network
from loopfold.model.templates import TEMPLATES, TemplateLibrary

STATE = "state.pt"
METRICS = "metrics.jsonl"


def usable(df: pd.DataFrame, max_len: int) -> pd.DataFrame:
    """Loops a model can train or be scored on: window <= max_len, standard residues, no break."""
    window = df["stem_n"] + df["sequence"] + df["stem_c"]
    ok = window.str.len().le(max_len) & window.map(lambda s: set(s) <= set(AMINO_ACIDS))
    ok &= ~df["has_chain_break"].astype(bool)
    return df[ok].reset_index(drop=True)


def load_part(data: str | Path, split_dir: str | Path | None, part: str, max_len: int) -> pd.DataFrame:
    """The usable loops of one split part (the whole dataset when ``split_dir`` is None)."""
    df = read_dataset(data)
    if split_dir is not None:
        split = read_split(split_dir)
        ids = set(split.loc[split["part"] == part, "loop_id"])
        if not ids:
            raise InvalidFile(f"{split_dir}: the split has no {part!r} loops")
        df = df[df["loop_id"].isin(ids)]
    return usable(df, max_len)


def _set_bins(model: torch.nn.Module, train: pd.DataFrame, cfg: TrainConfig) -> None:
    if hasattr(model, "bin_centers"):
        phi = np.concatenate([np.asarray(v) for v in train["phi"]])
        psi = np.concatenate([np.asarray(v) for v in train["psi"]])
        model.bin_centers.copy_(torch.from_numpy(fit_bins(phi, psi, cfg.n_bins, cfg.seed)))


def _val_score(model: torch.nn.Module, val: Batch, cfg: TrainConfig) -> tuple[float, float]:
    """(objective, seed_mse with correct masks) on the validation batch."""
    model.eval()
    with torch.no_grad():
        out = model(val.features, val.lengths)
        loss = training_loss(out, val, False, cfg.bin_weight, cfg.cis_weight)
        mse = masked_mse(out["sincos"], val.target, val.target_mask)
    return float(loss), float(mse)


def plot_curve(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train_loss"] for h in history], label="train loss")
    ax.plot(ep, [h["val_loss"] for h in history], label="validation loss")
    ax.plot(ep, [h["val_seed_mse"] for h in history], label="validation seed_mse", ls="--")
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


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
    tb = batch_from_frame(train, cfg.max_len)
    vb = batch_from_frame(val, cfg.max_len)
    model = build_network(cfg)
    _set_bins(model, train, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, cfg.patience // 3))
    history: list[dict] = []
    best, bad_epochs, start = float("inf"), 0, 0
    if resume:
        try:
            st = torch.load(out / STATE, weights_only=False)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            torch.set_rng_state(st["rng"])
            history, best, bad_epochs, start = st["history"], st["best"], st["bad_epochs"], st["epoch"]
        except (OSError, KeyError, RuntimeError, EOFError) as exc:
            raise CheckpointError(f"{out / STATE}: cannot resume ({exc})") from None
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
        total = 0.0
        for s in range(steps):
            idx = torch.from_numpy(order[s * cfg.batch_size : (s + 1) * cfg.batch_size])
            b = tb.subset(idx)
            loss = training_loss(model(b.features, b.lengths), b, _leaky(cfg), cfg.bin_weight, cfg.cis_weight)
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
    _calibrate(out, val, cfg)
    library = TemplateLibrary.from_frame(train)  # training part only: validation stays unseen
    if library.groups:
        library.save(out / TEMPLATES)
    plot_curve(history, out / "curve.png")
    return history


def _calibrate(out: Path, val: pd.DataFrame, cfg: TrainConfig) -> None:
    """Fit the bin-probability temperature on validation residues and store it with the best model."""
    from loopfold.model.calibration import fit_temperature
    from loopfold.model.checkpoint import load_model
    from loopfold.model.decode import run_network
    from loopfold.model.losses import assign_bins

    model, _, info = load_model(out)
    vb = batch_from_frame(val, cfg.max_len)
    pred = run_network(model, vb)
    if "bin_probs" not in pred:
        return
    labels, ok = assign_bins(vb.angles, model.bin_centers)
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
