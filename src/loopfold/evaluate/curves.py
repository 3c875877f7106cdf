"""A training run's loss curve as a PNG (``loopfold train`` writes it; ``loopfold report`` shows it)."""

from __future__ import annotations

from pathlib import Path

from loopfold.io.atomic import atomic_path


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
