"""Model and training configuration (frozen dataclasses, JSON round trip)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from loopfold.errors import InvalidFile

MODEL_NAMES = ("loopnet", "bilstm", "seed-lstm")
DEFAULT_MODEL = "loopnet"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    The seed's own settings are the defaults for ``seed-lstm``: Adam lr 0.004,
    batch 200, dropout 0.5. The three ``seed_*`` switches reproduce its defects
    and only affect ``seed-lstm``.
    """

    model: str = DEFAULT_MODEL
    max_len: int = 40
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    patience: int = 8
    clip: float = 1.0
    seed: int = 0
    hidden: int = 128
    n_bins: int = 48
    bin_weight: float = 0.1
    cis_weight: float = 0.1
    #: weight of sequence identity beside the log probability when choosing a template
    #: (tuned on validation loops by ``bench/tune_identity.py``)
    identity_weight: float = 20.0
    seed_bottleneck: bool = True
    seed_backward_at_last: bool = True
    seed_leaky_mask: bool = True

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A config from a dict; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidFile(f"config: unknown keys {sorted(unknown)}")
        cfg = cls(**data)
        if cfg.model not in MODEL_NAMES:
            raise InvalidFile(f"config: unknown model {cfg.model!r}; expected one of {', '.join(MODEL_NAMES)}")
        return cfg


def defaults_for(model: str) -> TrainConfig:
    """The default configuration of a model (the seed's hyper-parameters for seed-lstm)."""
    if model == "seed-lstm":
        return TrainConfig(model=model, max_len=31, batch_size=200, lr=0.004, dropout=0.5, weight_decay=0.0)
    if model == "bilstm":
        return TrainConfig(model=model, batch_size=64, lr=2e-3, dropout=0.3, weight_decay=0.0)
    return TrainConfig(model=model)


def load_config(path: str | Path | None, model: str | None, overrides: dict | None = None) -> TrainConfig:
    """Defaults for ``model``, updated by a JSON config file and explicit overrides."""
    data: dict = {}
    if path is not None:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidFile(f"{path}: not a readable JSON config ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidFile(f"{path}: a config must be a JSON object")
    name = model or data.get("model") or DEFAULT_MODEL
    base = defaults_for(name)
    cfg = TrainConfig.from_dict({**{f.name: getattr(base, f.name) for f in fields(base)}, **data, "model": name})
    return replace(cfg, **(overrides or {}))
