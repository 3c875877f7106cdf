"""Run summaries and the ``--parquet`` run of ``loopfold predict``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from loopfold.cli import console, tracked
from loopfold.errors import of_kind

#: Exit status when some records failed and the others were written.
EXIT_SOME_FAILED = 3


def summary(o) -> str:  # noqa: ANN001 - the CLI's run state (cli.predict._Outputs)
    """One line: records done, failed by kind (the exception's :attr:`~loopfold.errors.LoopfoldError.kind`),
    and the time taken."""
    counts: dict[str, int] = {}
    for _, _, kind in o.failures:
        counts[kind] = counts.get(kind, 0) + 1
    failed = ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return (f"summary: {o.done - len(o.failures)} of {o.done} record(s) predicted"
            f"{f'; failed: {failed}' if failed else ''}; {time.monotonic() - o.started:.1f} s")


def parquet_command(api, o, records, source: str, samples: int, part_size: int,  # noqa: ANN001 - CLI state
                    resume: bool, force: bool, on_error: str, model: Path | None, ray: str | None,
                    workers: int | None) -> int:
    """--parquet [--ray]: (join the Ray cluster,) open the run folder (``--resume`` checks its settings),
    predict the records of unfinished parts in this process or on the cluster, write the parts; the exit
    status. Each part is predicted as one batch either way, so both give the same rows."""
    from loopfold.io.parquet_parts import ParquetParts, clear_run, file_fingerprint, model_digest

    if force:
        clear_run(o.parquet)
    species = api.numberer.species
    settings = {"input": source, "model": api.predictor.name, "samples": samples,
                "model_sha256": model_digest(api.predictor.run_dir)}  # fmt: skip
    if Path(source).is_file():  # a pipe or standard input cannot be read twice: no fingerprint (nor resume)
        settings["input_file"] = file_fingerprint(Path(source))
    elif isinstance(records, list):  # --heavy/--light: the sequences themselves
        settings["input_sha256"] = hashlib.sha256(repr([(r.name, r.heavy, r.light) for r in records]).encode()
                                                  ).hexdigest()  # fmt: skip
    if species:
        settings["species"] = sorted(species)
    if ray is not None:
        from loopfold.io.parquet_parts import check_folder
        from loopfold.pipeline.cluster import connect

        check_folder(o.parquet, {**settings, "part_size": part_size}, resume)  # before a cluster is started
        connect(ray)  # before the run folder is made: a cluster that cannot be joined leaves nothing behind
    parts = ParquetParts(o.parquet, settings, part_size, resume)
    todo, parts.queue = parts.skip_done(records)
    o.parts = parts
    if ray is None:
        # each part one batch, as a Ray worker predicts it (the same rows either way)
        results = ((p.record, e) for p, e in api.predictions(todo, samples, chunk=part_size, first_chunk=None))
        return parquet_run(o, parts, results, on_error)
    from loopfold.pipeline.cluster import PartSettings, ray_parts, stage_shards

    folder = Path(o.parquet).resolve()
    cfg = PartSettings(str(folder), str(model.resolve()) if model is not None else None, api.predictor.name,
                       samples, tuple(species) if species else None, on_error == "fail",
                       settings["model_sha256"])  # fmt: skip

    def finished() -> Iterator[None]:
        for done in ray_parts(stage_shards(todo, parts.queue, folder), cfg, workers):
            if done.written:
                parts.finished(done.part)
            o.failures.extend(done.failures)
            if done.failures and on_error == "fail":
                _, message, kind = done.failures[0]
                raise of_kind(kind, message)
            yield from (None for _ in range(done.records))

    for _ in tracked(finished(), o.quiet, total=_left(o, parts)):
        o.done += 1
    return _parts_summary(o, parts)


def _left(o, parts) -> Callable[[], int | None]:  # noqa: ANN001 - the CLI's run state
    """Records still to predict, once the input is counted: its records less those of the finished
    parts kept (those of the parts finished before this run started)."""
    kept = set(parts.done)

    def left() -> int | None:
        total = o.total() if o.total is not None else None
        if total is None:
            return None
        return max(0, total - sum(max(0, min(parts.part_size, total - k * parts.part_size)) for k in kept))

    return left


def _parts_summary(o, parts) -> int:  # noqa: ANN001 - the CLI's run state
    """Say how many parts were written and kept, and the run summary; the exit status."""
    skipped = len(parts.done) - parts.written
    if parts.redone:
        console.print(f"{len(parts.redone)} finished part(s) did not read back whole and were predicted again: "
                      f"{', '.join(map(str, parts.redone))}", highlight=False)  # fmt: skip
    console.print(f"wrote {parts.written} part(s) in {o.parquet}" + (f"; {skipped} finished part(s) kept from the "
                  "earlier run" if skipped else ""), highlight=False)  # fmt: skip
    console.print(summary(o), highlight=False, soft_wrap=True)
    return EXIT_SOME_FAILED if o.failures else 0


def parquet_run(o, parts, results, on_error: str) -> int:  # noqa: ANN001 - the CLI's run state
    """--parquet: collect each part's records (in input order) and write the part as soon as it is
    whole (its ``part_size`` records, or the input's end), before the next part is predicted."""
    current, buf = None, []
    for res, err in tracked(results, o.quiet, total=_left(o, parts)):
        o.done += 1
        k = parts.queue.popleft()
        if current is not None and k != current:  # a safeguard: every part but the last has part_size records
            parts.write(current, buf)
            buf = []
        current = k
        if err is not None:
            if on_error == "fail":
                raise err
            o.failures.append((res["id"], str(err), err.kind))
        buf.append((res, err))
        if len(buf) == parts.part_size:
            parts.write(current, buf)
            current, buf = None, []
    if buf:
        parts.write(current, buf)
    return _parts_summary(o, parts)
