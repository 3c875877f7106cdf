"""A run's ``info`` block (``config.json``): what prediction relies on besides the weights, checked
and parsed once into :class:`RunInfo`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from loopfold.constants import AMINO_ACIDS, CDRS, DEFINITIONS
from loopfold.errors import InvalidFile
from loopfold.model.config import TrainConfig
from loopfold.model.error_model import ErrorModel


@dataclass(frozen=True)
class RunInfo:
    """A run's info block, typed (defaults where a key is absent).

    ``output``: ``structure`` or ``template`` as the run says (None when it does not): an FvNet run
    writes its own torsions unless it says ``template`` (then the template its bins choose); other
    networks write templates, and a run that says ``structure`` cannot have ensemble members.
    ``ensemble_weights``: per CDR, the weight of the run's network then of each ``members/`` network
    (checked against their number once the members are loaded: :func:`~loopfold.model.ensemble.check_weights`).
    """

    name: str
    definition: str
    stems: int
    default_stems: Mapping[str, tuple[str, str]]
    output: str | None
    bin_temperature: float
    nanobody_cdrs: frozenset[str]
    nanobody_templates: frozenset[str]
    ensemble_weights: object
    error_model: ErrorModel | None

    @classmethod
    def parse(cls, info: dict, cfg: TrainConfig, where: str, template_definition: str | None = None) -> RunInfo:
        """Check and parse ``info`` (``where``: the file, for messages).

        Raises:
            InvalidFile: one line naming ``where``, the key and the problem: an unknown CDR
                definition or one that differs from the template library's, stems that are not
                a whole number fitting the window or differ from the typical stems' length, a
                calibration temperature that is not a positive number, a corrupt error model.
        """
        _check(info, cfg, where, template_definition)
        default = info.get("default_stems") or {}
        return cls(
            name=str(info.get("name", f"loopfold-{cfg.model}")),
            definition=info.get("definition", "north"),
            stems=int(info.get("stems", 3)),
            default_stems=MappingProxyType({cdr: (pair[0], pair[1]) for cdr, pair in default.items()}),
            output=info.get("output"),
            bin_temperature=float(info.get("bin_temperature", 1.0)),
            nanobody_cdrs=frozenset(info.get("nanobody_cdrs", [])),
            nanobody_templates=frozenset(info.get("nanobody_templates", [])),
            ensemble_weights=info.get("ensemble_weights"),
            error_model=ErrorModel.from_info(info, where),
        )


def _check(info: dict, cfg: TrainConfig, where: str, template_definition: str | None = None) -> None:
    """Check the ``info`` block of a run's config (what prediction relies on besides the weights).

    Raises:
        InvalidFile: one line naming ``where``, the key and the problem: an unknown CDR
            definition or one that differs from the template library's, stems that are not
            a whole number fitting the window or differ from the typical stems' length, a
            calibration temperature that is not a positive number.
    """
    if not isinstance(info, dict):
        raise InvalidFile(f"{where}: info must be a JSON object, got {json.dumps(info)}")
    definition = info.get("definition", "north")
    if definition not in DEFINITIONS:
        raise InvalidFile(f"{where}: definition {definition!r}: expected one of {', '.join(DEFINITIONS)}")
    if template_definition is not None and template_definition != definition:
        raise InvalidFile(f"{where}: definition {definition!r} but the template library was cut under "
                          f"{template_definition!r}")  # fmt: skip
    stems = info.get("stems", 3)
    if not isinstance(stems, int) or isinstance(stems, bool) or stems < 0 or 2 * stems >= cfg.max_len:
        raise InvalidFile(f"{where}: stems {stems!r}: expected a whole number below {cfg.max_len // 2}")
    default = info.get("default_stems") or {}
    if not isinstance(default, dict):
        raise InvalidFile(f"{where}: default_stems must be a JSON object of CDR -> [N-stem, C-stem]")
    for cdr, pair in default.items():
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        if cdr not in CDRS or not ok or any(set(x) - set(AMINO_ACIDS) for x in pair):
            raise InvalidFile(f"{where}: default_stems {cdr!r}: {pair!r} is not a CDR and two amino-acid stems")
    longest = max((len(p[0]) for p in default.values()), default=stems)
    if longest != stems:  # ``stems`` is the N-side count the windows were cut with (the seed's have none)
        raise InvalidFile(f"{where}: stems {stems} but the typical N-stems have at most {longest} residues")
    if info.get("output", "structure") not in ("structure", "template"):
        raise InvalidFile(f"{where}: output {info.get('output')!r}: expected structure or template")
    t = info.get("bin_temperature", 1.0)
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t) or t <= 0:
        raise InvalidFile(f"{where}: bin_temperature {t!r}: expected a positive number")
