"""Model checkpoints: ``model.safetensors`` (weights) + ``config.json`` in a run folder."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from loopfold.errors import CheckpointError
from loopfold.io.atomic import atomic_path, write_text
from loopfold.model.config import TrainConfig
from loopfold.model.networks import build_network

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_model(run_dir: str | Path, model: nn.Module, cfg: TrainConfig, extra: dict | None = None) -> None:
    """Write weights and config atomically; ``extra`` is stored in the config file under ``info``."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(d / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    doc = {"config": json.loads(cfg.to_json()), "info": extra or {}}
    write_text(d / CONFIG, json.dumps(doc, indent=2) + "\n")


def load_model(run_dir: str | Path) -> tuple[nn.Module, TrainConfig, dict]:
    """Rebuild a model from a run folder (eval mode).

    Raises:
        CheckpointError: missing or corrupt files, or weights that do not fit the config
            (the message names the missing and unexpected keys).
    """
    d = Path(run_dir)
    try:
        doc = json.loads((d / CONFIG).read_text())
        cfg = TrainConfig.from_dict(doc["config"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{d / CONFIG}: missing or unreadable model config ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - InvalidFile from from_dict
        raise CheckpointError(f"{d / CONFIG}: {exc}") from None
    try:
        state = load_file(str(d / WEIGHTS))
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{d / WEIGHTS}: missing or corrupt weights ({exc})") from None
    model = build_network(cfg)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{d / WEIGHTS}: weights do not fit {cfg.model}: missing {missing}, unexpected {unexpected}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{d / WEIGHTS}: weights do not fit {cfg.model} ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, cfg, doc.get("info", {})
