"""Batch prediction: antibodies streamed in chunks, each record's result or error in input order."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

from loopfold.errors import LoopfoldError
from loopfold.io.fasta import AntibodyInput, antibody_chains, clean_sequence
from loopfold.numbering.anarci import number_sequences
from loopfold.predict import Predictor


def predict_antibodies(
    predictor: Predictor,
    antibodies: Iterable[AntibodyInput],
    samples: int = 0,
    chunk: int = 512,
    workers: int | None = None,
) -> Iterator[tuple[dict, str | None]]:
    """Yield ``(result, error)`` per antibody, in input order; errors are messages, not raised:
    a failed antibody's result is ``{"id": name, "error": message}``.

    Antibodies are taken ``chunk`` at a time: their chains are numbered together
    (anarcism, ``workers`` threads) and their loops go through the network in one
    call, so memory stays flat however many antibodies stream through.
    """
    it = iter(antibodies)
    while batch := list(itertools.islice(it, chunk)):
        errors: dict[int, str] = {}
        missing: dict[int, list[dict]] = {}
        items = []
        for k, ab in enumerate(batch):
            if ab.error is not None:
                errors[k] = ab.error
                continue
            try:
                chains = [
                    (f"{ab.name} {label}", clean_sequence(seq, f"{ab.name} {label}"))
                    for label, seq in antibody_chains(ab)
                ]
            except LoopfoldError as exc:
                errors[k] = str(exc)
                continue
            items += chains
        numbered = iter(number_sequences(items, workers=workers or os.cpu_count())) if items else iter(())
        queries, owners = [], []
        for k, ab in enumerate(batch):
            if k in errors:
                continue
            doms = {label: next(numbered) for label, _ in antibody_chains(ab)}
            missing[k] = []
            try:
                qs = predictor.antibody_queries(ab, doms, missing[k])
            except LoopfoldError as exc:
                errors[k] = str(exc)
                continue
            queries += qs
            owners += [k] * len(qs)
        loops = predictor.predict_queries(queries, samples) if queries else []
        grouped: dict[int, list[dict]] = {}
        for k, lp in zip(owners, loops, strict=True):
            grouped.setdefault(k, []).append(lp)
        for k, ab in enumerate(batch):
            if k in errors:
                yield {"id": ab.name, "error": errors[k]}, errors[k]
            else:
                res = {"id": ab.name, "loops": grouped.get(k, [])}
                if missing.get(k):
                    res["missing"] = missing[k]
                yield res, None
