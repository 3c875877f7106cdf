"""The project's own exceptions; each message names the input and the problem.

Each class has a ``kind``: the short label a run summary counts failed records by
(``loopfold predict`` prints ``failed: 2 not an antibody, 1 loop too long``).
"""

from __future__ import annotations


class LoopfoldError(Exception):
    """Base class of every error loopfold raises on purpose."""

    kind = "other"


class InvalidSequence(LoopfoldError):
    """A sequence holds a letter that is not a standard amino acid, or has a bad length."""

    kind = "invalid sequence"


class UnknownResidue(InvalidSequence):
    """A sequence holds a letter that is not one of the 20 standard amino acids."""

    kind = "letter not an amino acid"


class LoopTooLong(InvalidSequence):
    """A loop window (loop + stems) is longer than the model reads."""

    kind = "loop too long"


class BadStructure(LoopfoldError):
    """A structure lacks what is needed (atoms, residues) or is inconsistent."""

    kind = "bad structure"


class InvalidFile(LoopfoldError):
    """A file cannot be read or parsed."""

    kind = "file"


class BadFileName(InvalidFile):
    """A record's name cannot become a file name, or two records would be written to the same file."""

    kind = "file name"


class CheckpointError(LoopfoldError):
    """A model checkpoint is missing, corrupt or does not match its config."""

    kind = "model files"


class NumberingError(LoopfoldError):
    """A chain could not be numbered as an antibody variable domain."""

    kind = "not an antibody"


class NumberingRefused(NumberingError):
    """A chain was numbered, but its numbering failed validation under both numbering tools."""

    kind = "numbering failed validation"


class InvalidInput(LoopfoldError):
    """An API call's arguments are of the wrong type or out of range (e.g. a sequence that is not text),
    or an input record is unusable as a whole."""

    kind = "invalid input"


class EmptyRecord(InvalidInput):
    """A record holds no heavy or light chain sequence."""

    kind = "empty record"


class NotALocus(InvalidInput):
    """An AIRR table row whose locus is not IGH, IGK or IGL, or that has no sequence."""

    kind = "not an antibody locus"


class BadRecords(InvalidInput):
    """The FASTA records of one antibody do not fit together (not adjacent, two chains of a type, mixed)."""

    kind = "FASTA records"


class RefinementError(LoopfoldError):
    """A model cannot be refined (PDBFixer or OpenMM failed)."""

    kind = "refinement"


def of_kind(kind: str, message: str) -> LoopfoldError:
    """The error of this module whose ``kind`` is ``kind`` (LoopfoldError when none), with ``message``:
    an error sent between processes as its message and kind (a Ray shard's record, a worker's
    ``(id, message, kind)`` failure) keeps its type. Kinds are unique per class."""
    found = [c for c in globals().values() if isinstance(c, type) and issubclass(c, LoopfoldError) and c.kind == kind]
    return (found[0] if found else LoopfoldError)(message)
