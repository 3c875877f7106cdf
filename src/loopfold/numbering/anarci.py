"""Number antibody variable domains from sequence with anarcism (IMGT scheme, offline)."""

from __future__ import annotations

from dataclasses import dataclass

import anarcism

from loopfold.errors import NumberingError


@dataclass(frozen=True)
class NumberedDomain:
    """One variable domain found in a sequence.

    Attributes:
        chain_type: ``"H"`` or ``"L"`` (kappa and lambda both map to L).
        scheme: the numbering scheme of ``positions`` (``"imgt"`` here).
        indices: 0-based indices into the input sequence, one per numbered residue.
        positions: ``(number, insertion code)`` per numbered residue.
    """

    chain_type: str
    scheme: str
    indices: tuple[int, ...]
    positions: tuple[tuple[int, str], ...]


def _domains(result: anarcism.SequenceResult) -> list[NumberedDomain]:
    out = []
    for dom in result.domains:
        if dom.receptor_type != "IG" or dom.chain_type not in ("H", "K", "L"):
            continue
        nums = dom.numbering
        out.append(
            NumberedDomain(
                chain_type="H" if dom.chain_type == "H" else "L",
                scheme="imgt",
                indices=tuple(r.sequence_index for r in nums),
                positions=tuple((r.position, r.insertion_code.strip()) for r in nums),
            )
        )
    return out


def number_sequence(sequence: str, name: str = "sequence") -> list[NumberedDomain]:
    """All antibody variable domains of ``sequence`` (a Fab chain gives one, an scFv two).

    Raises:
        NumberingError: no antibody variable domain was found, or anarcism rejected it.
    """
    try:
        result = anarcism.number_sequence(sequence, id=name, allowed_chains=["H", "K", "L"])
    except anarcism.AnarcismError as exc:
        raise NumberingError(f"{name}: cannot be numbered ({exc})") from None
    domains = _domains(result)
    if not domains:
        raise NumberingError(f"{name}: no antibody variable domain found")
    return domains


def number_sequences(
    items: list[tuple[str, str]], workers: int | None = None
) -> list[list[NumberedDomain] | NumberingError]:
    """Number many ``(name, sequence)`` pairs; failures come back as NumberingError values."""
    results = anarcism.number_sequences(items, workers=workers, allowed_chains=["H", "K", "L"])
    out: list[list[NumberedDomain] | NumberingError] = []
    for (name, _), res in zip(items, results, strict=True):
        doms = _domains(res)
        out.append(doms if doms else NumberingError(f"{name}: no antibody variable domain found"))
    return out
