"""Number the chains of a run once each: a repertoire repeats chains (light chains above all), so a
chain whose sequence was numbered earlier in the run reuses that validated numbering.

Only successful numberings are kept (a bounded least-recently-used set);
repeats inside one call are numbered once, and a failure is reported for every
record that holds the chain, under that record's name.
"""

from __future__ import annotations

from collections import OrderedDict

from loopfold.errors import NumberingError
from loopfold.numbering.anarci import NumberedDomain, check_species, number_sequences

#: Numberings kept.
CACHE_SIZE = 4096


class ChainNumberer:
    """Validated numbering with a per-run cache by sequence (see the module docstring).

    Args:
        species: anarcism profiles to align to (default all); see :func:`number_sequences`.
        size: most numberings kept.
    """

    def __init__(self, species: list[str] | None = None, size: int = CACHE_SIZE) -> None:
        self.species = check_species(species)
        self.size = size
        self.cache: OrderedDict[str, list[NumberedDomain]] = OrderedDict()

    def number(
        self, items: list[tuple[str, str]], workers: int | None = None
    ) -> list[list[NumberedDomain] | NumberingError]:
        """:func:`number_sequences` for ``(name, sequence)`` pairs, each distinct new sequence once."""
        out: list[list[NumberedDomain] | NumberingError | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}
        for i, (_, seq) in enumerate(items):
            hit = self.cache.get(seq)
            if hit is not None:
                self.cache.move_to_end(seq)
                out[i] = hit
            else:
                todo.setdefault(seq, []).append(i)
        firsts = [(items[idx[0]][0], seq) for seq, idx in todo.items()]
        found = number_sequences(firsts, workers=workers, species=self.species) if firsts else []
        for (seq, idx), (first, _), res in zip(todo.items(), firsts, found, strict=True):
            if isinstance(res, NumberingError):
                for i in idx:  # the message names the first record holding the chain: name each its own
                    out[i] = res if i == idx[0] else type(res)(str(res).replace(first, items[i][0], 1))
                continue
            for i in idx:
                out[i] = res
            self.cache[seq] = res
            if len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return out  # type: ignore[return-value]
