"""The project's own exceptions; each message names the input and the problem."""

from __future__ import annotations


class LoopfoldError(Exception):
    """Base class of every error loopfold raises on purpose."""


class InvalidSequence(LoopfoldError):
    """A sequence holds a letter that is not a standard amino acid, or has a bad length."""


class BadStructure(LoopfoldError):
    """A structure lacks what is needed (atoms, residues) or is inconsistent."""


class InvalidFile(LoopfoldError):
    """A file cannot be read or parsed."""


class CheckpointError(LoopfoldError):
    """A model checkpoint is missing, corrupt or does not match its config."""


class NumberingError(LoopfoldError):
    """A chain could not be numbered as an antibody variable domain."""


class InvalidInput(LoopfoldError):
    """An API call's arguments are of the wrong type or out of range (e.g. a sequence that is not text)."""
