"""FASTA reading, and pairing of heavy/light records into antibodies.

Convention: ``>NAME|H`` and ``>NAME|L`` records are the heavy and light chains
of antibody NAME; a record without ``|H`` or ``|L`` is an antibody of its own
whose chains are found by numbering (a heavy chain alone is a nanobody; an scFv
holds both).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loopfold.constants import AMINO_ACIDS
from loopfold.errors import BadRecords, InvalidFile, InvalidSequence, LoopfoldError, UnknownResidue


@dataclass(frozen=True)
class AntibodyInput:
    """One antibody to predict: a name and its chain sequences (either may be None)."""

    name: str
    heavy: str | None
    light: str | None
    other: str | None = None  # an unlabelled record: numbered to find its chains
    #: why the records of this antibody cannot be used (reported per record, not raised)
    error: LoopfoldError | None = None


def clean_sequence(seq: str, what: str) -> str:
    """Upper-case, whitespace removed; raises InvalidSequence naming the first bad position (or
    saying the sequence is empty or not text)."""
    if not isinstance(seq, str):
        raise InvalidSequence(f"{what}: expected a sequence as text, got {type(seq).__name__}")
    s = "".join(seq.split()).upper()
    if not s:
        raise InvalidSequence(f"{what}: empty sequence")
    for i, aa in enumerate(s):
        if aa not in AMINO_ACIDS:
            raise UnknownResidue(f"{what}: position {i + 1} is {aa!r}, not one of the 20 standard amino acids")
    return s


def read_fasta(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """``(header, sequence)`` pairs, streamed; a record without sequence gives ``""`` (its antibody is
    then reported as a failed record, see :func:`antibodies_from_fasta`).

    Raises:
        InvalidFile: unreadable file, text before the first header, or no record at all.
    """
    p = Path(path)
    try:
        fh = _open_text(p)
    except OSError as exc:
        raise InvalidFile(f"{p}: cannot read ({exc.strerror})") from None
    with fh:
        parts: list[str]
        name, parts = None, []
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if name is not None:
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
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InvalidFile(f"{p}: not a readable gzip file ({exc})") from None
        if name is None:
            raise InvalidFile(f"{p}: no FASTA records")
        yield name, "".join(parts)


def antibodies_from_fasta(path: str | os.PathLike[str]) -> Iterator[AntibodyInput]:
    """Antibodies of a FASTA file, streamed (see the module docstring for the convention).

    The ``|H`` and ``|L`` records of one antibody must be adjacent, so that a file
    of any size is read with bounded memory. A record that cannot be used (a letter
    that is not a standard amino acid, a second chain of one kind, an unlabelled
    record beside ``|H``/``|L`` ones, records of one antibody apart) makes its
    antibody come out with ``error`` set, naming the record; reading goes on.

    Raises:
        InvalidFile: the file itself cannot be read as FASTA.
    """
    done: set[str] = set()
    current: dict | None = None
    for header, seq in read_fasta(path):
        key, this = _record_key(header)
        if current is None or this != current["name"]:
            if current is not None:
                done.add(current["name"])
                yield _antibody(current)
            current = {"name": this, "chains": {}, "error": None}
            if this in done:
                current["error"] = BadRecords(f"{path}: record {header!r}: the records of antibody {this!r} are "
                                                "not adjacent")
        chains = current["chains"]
        if current["error"] is not None:
            continue
        if key in chains:
            current["error"] = BadRecords(f"{path}: record {header!r}: antibody {this!r} has two {key} chains")
        elif chains and (key == "other") != ("other" in chains):
            current["error"] = BadRecords(f"{path}: record {header!r}: antibody {this!r} mixes unlabelled and "
                                             "|H/|L records")
        else:
            try:
                chains[key] = clean_sequence(seq, f"{path}: record {header!r}")
            except InvalidSequence as exc:
                current["error"] = exc
    if current is not None:
        yield _antibody(current)


def _open_text(p: Path) -> IO[str]:
    """A FASTA file opened as text: a byte-order mark at the start is accepted; .gz is read compressed."""
    return gzip.open(p, "rt", encoding="utf-8-sig") if p.suffix == ".gz" else open(p, encoding="utf-8-sig")


def _record_key(header: str) -> tuple[str, str]:
    """A FASTA header's chain (``H``, ``L`` or ``other``) and the antibody it belongs to."""
    base, _, tag = header.partition("|")
    key = tag.strip().upper() if tag.strip().upper() in ("H", "L") else "other"
    return key, (header if key == "other" else base).strip()


def count_antibodies(path: str | os.PathLike[str]) -> int | None:
    """How many antibodies :func:`antibodies_from_fasta` gives for the file (a scan of its headers, for a
    progress line's total); None when the file cannot be read so (the run itself then says why)."""
    p = Path(path)
    n, previous = 0, None
    try:
        with _open_text(p) as fh:
            for line in fh:
                if line.startswith(">"):
                    this = _record_key(line[1:].strip())[1]
                    n, previous = n + (this != previous), this
    except (OSError, UnicodeDecodeError, EOFError, zlib.error):
        return None
    return n


def _antibody(group: dict) -> AntibodyInput:
    chains = group["chains"]
    if group["error"] is not None:
        return AntibodyInput(group["name"], None, None, error=group["error"])
    return AntibodyInput(group["name"], chains.get("H"), chains.get("L"), chains.get("other"))


def antibody_chains(ab: AntibodyInput) -> list[tuple[str, str]]:
    """``(label, sequence)`` of the chains an antibody input gives: heavy, light, unlabelled."""
    return [(label, seq) for label, seq in (("heavy", ab.heavy), ("light", ab.light), ("sequence", ab.other))
            if seq is not None]  # fmt: skip
