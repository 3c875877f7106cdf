"""Number antibody variable domains from sequence, validated, with a second opinion.

anarcism (offline Rust, IMGT) numbers every chain first. Each domain is checked
against the conserved residues (:mod:`loopfold.numbering.validate`); one that
fails is numbered again by anarcism without the profiles of the species it was
aligned to (one profile can shift a whole family: rhesus shifts Cys23 of many
human kappa chains), and, if that fails too, by anarcii
(:mod:`loopfold.numbering.second_opinion`), each checked again. On the Rosetta
antibody database, with the retry, every CDR cut agrees with the file numbering
exactly as often as with anarcii alone after the check (``bench/numbering.py``,
``docs/benchmarks.md``). A chain whose domain fails every numbering is
refused with a NumberingError naming the chain and the problem, so no loop is
ever cut from a failed numbering. ``engine`` selects a single numberer, unvalidated, for
benchmarks (``bench/numbering.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import anarcism

from loopfold.errors import InvalidSequence, NumberingError, NumberingRefused
from loopfold.numbering import second_opinion
from loopfold.numbering.validate import check_domain

ENGINES = ("validated", "anarcism", "anarcii")


@dataclass(frozen=True)
class NumberedDomain:
    """One variable domain found in a sequence.

    Attributes:
        chain_type: ``"H"`` or ``"L"`` (kappa and lambda both map to L).
        scheme: the numbering scheme of ``positions`` (``"imgt"`` here).
        indices: 0-based indices into the input sequence, one per numbered residue.
        positions: ``(number, insertion code)`` per numbered residue.
        numberer: the package whose numbering this is (``anarcism`` or ``anarcii``).
    """

    chain_type: str
    scheme: str
    indices: tuple[int, ...]
    positions: tuple[tuple[int, str], ...]
    numberer: str = "anarcism"
    species: str = ""  # the germline species whose profile anarcism aligned to ("" from anarcii)


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
                species=dom.species or "",
            )
        )
    return out


def _second_opinion(items: list[tuple[str, str]]) -> list[list[NumberedDomain] | NumberingError]:
    """anarcii alone, one domain per sequence, unvalidated."""
    found = second_opinion.renumber(items)
    out: list[list[NumberedDomain] | NumberingError] = []
    for name, _ in items:
        r = found[name]
        if isinstance(r, str):
            out.append(NumberingError(f"{name}: cannot be numbered ({r})"))
        else:
            out.append([NumberedDomain(r[0], "imgt", r[1], r[2], "anarcii")])
    return out


def _validate(
    items: list[tuple[str, str]], numbered: list[list[NumberedDomain] | NumberingError],
    species: list[str] | None = None, workers: int | None = None,
) -> list[list[NumberedDomain] | NumberingError]:  # fmt: skip
    """Check every domain; renumber failing ones (anarcism without the failing species' profiles, then
    the second opinion, anarcii); refuse chains whose domain fails every numbering."""
    jobs: dict[str, tuple[int, int, str]] = {}  # job name -> (item, domain, first problem)
    subs: list[tuple[str, str]] = []
    for k, ((_, seq), doms) in enumerate(zip(items, numbered, strict=True)):
        if isinstance(doms, NumberingError):
            continue
        for j, d in enumerate(doms):
            problem = check_domain(seq, d.indices, d.positions)
            if problem is not None:
                stop = doms[j + 1].indices[0] if j + 1 < len(doms) else len(seq)  # this domain's stretch
                jobs[f"{k}:{j}"] = (k, j, problem)
                subs.append((f"{k}:{j}", seq[d.indices[0] : stop]))
    if not jobs:
        return numbered
    out = [d if isinstance(d, NumberingError) else list(d) for d in numbered]

    def accept(key: str, dom: NumberedDomain) -> str | None:
        """Put a renumbered domain in place if it passes; else the problem."""
        k, j, _ = jobs[key]
        first = cast(list[NumberedDomain], numbered[k])[j]  # jobs holds only chains that were numbered
        dom = replace(dom, indices=tuple(i + first.indices[0] for i in dom.indices))
        problem = check_domain(items[k][1], dom.indices, dom.positions)
        if problem is None and dom.chain_type != first.chain_type:
            problem = f"chain type {dom.chain_type}, anarcism said {first.chain_type}"
        if problem is None:
            cast(list[NumberedDomain], out[k])[j] = dom  # not refused yet: callers skip refused chains
        return problem

    # a profile can misalign a whole family (rhesus shifts C23 of human kappa chains): the other species'
    # profiles usually number it right, and cost a fraction of the second opinion
    retry: dict[str, list[tuple[str, str]]] = {}
    for key, sub in subs:
        k, j, _ = jobs[key]
        retry.setdefault(cast(list[NumberedDomain], numbered[k])[j].species, []).append((key, sub))
    left = []
    for failing, group in retry.items():
        others = [x for x in (species or anarcism.species()) if x != failing]
        again: list = [None] * len(group)
        if others and failing:
            try:
                again = anarcism.number_sequences(group, workers=workers, allowed_chains=["H", "K", "L"],
                                                  allowed_species=others)  # fmt: skip
            except anarcism.AnarcismError:
                pass  # all of them go to the second opinion
        for (key, sub), res in zip(group, again, strict=True):
            doms = _domains(res) if res is not None else []
            if not doms or accept(key, doms[0]) is not None:
                left.append((key, sub))
    found = second_opinion.renumber(left)
    r: tuple[str, tuple[int, ...], tuple[tuple[int, str], ...]] | str | None
    for key, _ in left:
        k, j, problem = jobs[key]
        if isinstance(out[k], NumberingError):
            continue
        r = found[key]
        if not isinstance(r, str):
            r = accept(key, NumberedDomain(r[0], "imgt", r[1], r[2], "anarcii"))
            if r is None:
                continue
        out[k] = NumberingRefused(
            f"{items[k][0]}: numbering failed validation ({problem}; second opinion, anarcii: {r}); chain refused"
        )
    return out


def check_species(species: list[str] | None) -> list[str] | None:
    """``species`` if anarcism has germline profiles for all of them (None: all species).

    Raises:
        InvalidSequence: an unknown species (anarcism would ignore it silently).
    """
    if species is None:
        return None
    known = anarcism.species()
    bad = [s for s in species if s not in known]
    if bad or not species:
        raise InvalidSequence(f"species (--species) {', '.join(bad) or '(none)'}: expected some of "
                              f"{', '.join(known)}")  # fmt: skip
    return list(species)


def number_sequences(
    items: list[tuple[str, str]], workers: int | None = None, engine: str = "validated",
    species: list[str] | None = None,
) -> list[list[NumberedDomain] | NumberingError]:  # fmt: skip
    """Number many ``(name, sequence)`` pairs; failures come back as NumberingError values.

    Args:
        engine: ``validated`` (default: anarcism, checked, anarcii for domains that fail),
            or ``anarcism`` / ``anarcii`` alone without validation.
        species: align to these species' profiles only (default all; fewer is faster, see
            ``docs/benchmarks.md``); the anarcii second opinion is not restricted.
    """
    if engine not in ENGINES:
        raise ValueError(f"numbering engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "anarcii":
        return _second_opinion(items)
    opts: dict[str, Any] = {"allowed_chains": ["H", "K", "L"], "allowed_species": check_species(species)}
    results: Sequence[anarcism.SequenceResult | NumberingError]
    try:
        results = anarcism.number_sequences(items, workers=workers, **opts)
    except anarcism.AnarcismError:  # one bad sequence fails the whole call: number them one by one
        results = [_one(name, seq, opts) for name, seq in items]
    out: list[list[NumberedDomain] | NumberingError] = []
    for (name, _), res in zip(items, results, strict=True):
        if isinstance(res, NumberingError):
            out.append(res)
            continue
        doms = _domains(res)
        out.append(doms if doms else NumberingError(f"{name}: no antibody variable domain found"))
    return out if engine == "anarcism" else _validate(items, out, opts["allowed_species"], workers)


def _one(name: str, sequence: str, opts: dict) -> anarcism.SequenceResult | NumberingError:
    """anarcism on one sequence; its refusal as a NumberingError value."""
    try:
        return anarcism.number_sequence(sequence, id=name, **opts)
    except anarcism.AnarcismError as exc:
        return NumberingError(f"{name}: cannot be numbered ({exc})")


def number_sequence(sequence: str, name: str = "sequence", engine: str = "validated") -> list[NumberedDomain]:
    """All antibody variable domains of ``sequence`` (a Fab chain gives one, an scFv two), validated.

    Raises:
        NumberingError: no antibody variable domain was found, anarcism rejected the
            sequence, or a domain failed validation under both numberings.
    """
    result = number_sequences([(name, sequence)], workers=1, engine=engine)[0]
    if isinstance(result, NumberingError):
        raise result
    return result
