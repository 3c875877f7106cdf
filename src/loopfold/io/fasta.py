"""FASTA reading, and pairing of heavy/light records into antibodies.

Convention: ``>NAME|H`` and ``>NAME|L`` records are the heavy and light chains
of antibody NAME; a record without ``|H`` or ``|L`` is an antibody of its own
whose chains are found by numbering (a heavy chain alone is a nanobody; an scFv
holds both).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loopfold.constants import AMINO_ACIDS
from loopfold.errors import InvalidFile, InvalidSequence


@dataclass(frozen=True)
class AntibodyInput:
    """One antibody to predict: a name and its chain sequences (either may be None)."""

    name: str
    heavy: str | None
    light: str | None
    other: str | None = None  # an unlabelled record: numbered to find its chains


def clean_sequence(seq: str, what: str) -> str:
    """Upper-case, whitespace removed; raises InvalidSequence naming the first bad position."""
    s = "".join(seq.split()).upper()
    if not s:
        raise InvalidSequence(f"{what}: empty sequence")
    for i, aa in enumerate(s):
        if aa not in AMINO_ACIDS:
            raise InvalidSequence(f"{what}: position {i + 1} is {aa!r}, not one of the 20 standard amino acids")
    return s


def read_fasta(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """``(header, sequence)`` pairs, streamed.

    Raises:
        InvalidFile: unreadable file, text before the first header, or a record without sequence.
    """
    p = Path(path)
    try:
        fh = open(p, encoding="utf-8")
    except OSError as exc:
        raise InvalidFile(f"{p}: cannot read ({exc.strerror})") from None
    with fh:
        name, parts = None, []
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if name is not None:
                        if not parts:
                            raise InvalidFile(f"{p}: record {name!r} has no sequence")
                        yield name, "".join(parts)
                    name, parts = line[1:].strip(), []
                    if not name:
                        raise InvalidFile(f"{p}: line {lineno}: empty record name")
                elif name is None:
                    raise InvalidFile(f"{p}: line {lineno}: sequence before the first '>' header")
                else:
                    parts.append(line)
        except UnicodeDecodeError:
            raise InvalidFile(f"{p}: not a UTF-8 text FASTA file") from None
        if name is None:
            raise InvalidFile(f"{p}: no FASTA records")
        if not parts:
            raise InvalidFile(f"{p}: record {name!r} has no sequence")
        yield name, "".join(parts)


def antibodies_from_fasta(path: str | os.PathLike[str]) -> list[AntibodyInput]:
    """Antibodies of a FASTA file, paired by name (see the module docstring)."""
    chains: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for header, seq in read_fasta(path):
        name, _, tag = header.partition("|")
        key = tag.strip().upper() if tag.strip().upper() in ("H", "L") else "other"
        if key == "other":
            name = header
        name = name.strip()
        if name not in chains:
            chains[name] = {}
            order.append(name)
        if key in chains[name]:
            raise InvalidFile(f"{path}: record {header!r}: antibody {name!r} has two {key} chains")
        chains[name][key] = clean_sequence(seq, f"{path}: record {header!r}")
    return [AntibodyInput(n, chains[n].get("H"), chains[n].get("L"), chains[n].get("other")) for n in order]
