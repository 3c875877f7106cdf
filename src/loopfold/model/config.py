"""Model and training configuration (frozen dataclasses, JSON round trip)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from loopfold.errors import InvalidFile

MODEL_NAMES = ("loopnet", "fvnet", "bilstm", "seed-lstm")
#: Attention heads of the loopnet and fvnet transformers (``hidden`` must be a multiple).
ATTENTION_HEADS = 4
#: Allowed range of each numeric field (inclusive).
RANGES = (
    ("max_len", 4, 512), ("epochs", 1, 100_000), ("batch_size", 1, 1_000_000), ("lr", 1e-12, 10.0),
    ("weight_decay", 0.0, 10.0), ("dropout", 0.0, 0.99), ("patience", 1, 100_000), ("clip", 0.0, 1e6),
    ("seed", 0, 2**32 - 1), ("hidden", 1, 65_536), ("n_bins", 2, 4096), ("bin_weight", 0.0, 1e6),
    ("cis_weight", 0.0, 1e6), ("identity_weight", 0.0, 1e9), ("structure_weight", 0.0, 1e6),
    ("rank_weight", 0.0, 1e6),
)  # fmt: skip
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
    #: fvnet: weight of the loss on its own rebuilt structure (loop RMSD + CA distance error); 0 turns it off
    structure_weight: float = 1.0
    #: fvnet: weight of the expected true RMSD of the template the network would choose
    rank_weight: float = 1.0
    #: fvnet: read the whole numbered Fv (else only the window)
    use_context: bool = True
    #: fvnet: read the k most identical training loops as input
    use_templates: bool = True
    seed_bottleneck: bool = True
    seed_backward_at_last: bool = True
    seed_leaky_mask: bool = True

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A config from a dict, checked field by field (type and range).

        Raises:
            InvalidFile: unknown keys, a value of the wrong type (``"40"`` for an
                integer) or out of range, or an unknown model; one line naming the key.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise InvalidFile(f"config: unknown keys {sorted(unknown)}")
        for key, value in data.items():
            kind = {"int": int, "float": float, "bool": bool, "str": str}[str(known[key].type)]
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok:
                what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]
                raise InvalidFile(f"config: {key} must be {what}, got {value!r}")
        cfg = cls(**data)
        if cfg.model not in MODEL_NAMES:
            raise InvalidFile(f"config: unknown model {cfg.model!r}; expected one of {', '.join(MODEL_NAMES)}")
        for key, low, high in RANGES:
            value = getattr(cfg, key)
            if not low <= value <= high:
                raise InvalidFile(f"config: {key} {value!r} is outside [{low}, {high}]")
        if cfg.model in ("loopnet", "fvnet") and cfg.hidden % ATTENTION_HEADS:
            raise InvalidFile(f"config: hidden {cfg.hidden} must be a multiple of {ATTENTION_HEADS} for {cfg.model} "
                              f"(its attention has {ATTENTION_HEADS} heads)")  # fmt: skip
        return cfg


def defaults_for(model: str) -> TrainConfig:
    """The default configuration of a model (the seed's hyper-parameters for seed-lstm)."""
    if model == "seed-lstm":
        return TrainConfig(model=model, max_len=31, batch_size=200, lr=0.004, dropout=0.5, weight_decay=0.0)
    if model == "bilstm":
        return TrainConfig(model=model, batch_size=64, lr=2e-3, dropout=0.3, weight_decay=0.0)
    if model == "fvnet":
        return TrainConfig(model=model, hidden=96, batch_size=32, epochs=25, patience=6)
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
