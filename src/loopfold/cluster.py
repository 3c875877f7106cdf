"""Ray Data runs: ``loopfold predict ... --parquet DIR --ray [ADDRESS]``.

The same pipeline as a one-process ``--parquet`` run, spread over a Ray cluster:
the driver reads the input and cuts it into the run's parts (``--part-size``
records each, numbered as in :mod:`loopfold.io.parquet_parts`); Ray Data hands
the parts to a pool of workers, each of which loads the model once, numbers and
predicts its part's antibodies in one batch and writes the part's Parquet files
itself (atomically, so a killed run keeps every finished part and ``--resume``
goes on from there). The rows are those a one-process run writes.

``ADDRESS`` is a running cluster's head (``HOST:PORT``; ``auto`` finds one
started on this machine); ``local`` starts a cluster inside this run on this
machine's cores. On a multi-machine cluster, every node needs loopfold installed
(and ``--model`` at the same path) and the output folder on a file system all
nodes share. Ray's usage statistics are switched off: nothing leaves the machine.
The driver holds the input sequences (about 0.5 kB per antibody), so split inputs
much larger than 10^7 antibodies into several runs.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loopfold.errors import LoopfoldError
from loopfold.io.fasta import AntibodyInput

#: ``--ray`` without an address: start a cluster on this machine for the run.
LOCAL = "local"


@dataclass(frozen=True)
class PartSettings:
    """What every worker needs to predict and write a part."""

    folder: str  # the run's output folder (absolute; shared by all nodes)
    model: str | None
    samples: int
    species: tuple[str, ...] | None


@dataclass(frozen=True)
class PartDone:
    """A part a worker finished: its number, its record count and its failures ``(id, reason)``."""

    part: int
    records: int
    failures: tuple[tuple[str, str], ...]


def part_blocks(records: Iterable[AntibodyInput], queue: deque) -> list[dict]:
    """Ray Data rows, one per part: ``{"part": k, "records": JSON list of records}`` (``queue`` gives each
    record's part as it is read, see :meth:`ParquetParts.skip_done`)."""
    blocks: dict[int, list] = {}
    for rec in records:
        blocks.setdefault(queue.popleft(), []).append([rec.name, rec.heavy, rec.light, rec.other, rec.error])
    return [{"part": k, "records": json.dumps(v)} for k, v in blocks.items()]


def _worker_class(settings: PartSettings, threads: int) -> type:
    """The worker: a class without constructor arguments (Ray ships it with the settings inside)."""

    class PartWorker:
        def __init__(self) -> None:
            import torch

            from loopfold.api import LoopFold

            torch.set_num_threads(threads)
            species = list(settings.species) if settings.species else None
            self.api = LoopFold(settings.model, fv=False, species=species, workers=threads)

        def __call__(self, batch: dict) -> dict:
            from loopfold.io.parquet_parts import write_part

            out: dict[str, list] = {"part": [], "records": [], "failures": []}
            for k, text in zip(batch["part"], batch["records"], strict=True):
                abs_ = [AntibodyInput(*r) for r in json.loads(text)]
                results = [(p.record, e) for p, e in self.api.predictions(abs_, settings.samples, chunk=len(abs_))]
                write_part(Path(settings.folder), int(k), results)
                out["part"].append(int(k))
                out["records"].append(len(results))
                out["failures"].append(json.dumps([[r["id"], e] for r, e in results if e is not None]))
            return out

    return PartWorker


def ray_parts(blocks: list[dict], settings: PartSettings, address: str = LOCAL,
              workers: int | None = None) -> Iterator[PartDone]:  # fmt: skip
    """Predict and write ``blocks`` (from :func:`part_blocks`) on a Ray cluster; yield each part as it
    finishes (not in part order).

    Args:
        address: a head's ``HOST:PORT``, ``auto``, or :data:`LOCAL` (a cluster on this machine).
        workers: model copies (Ray actors); default one per CPU of the cluster. Each gets the
            cluster's CPUs divided among them, as torch and numbering threads.

    Raises:
        LoopfoldError: Ray is not installed, the cluster cannot be reached, or a worker failed.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would report usage over the network
    try:
        import ray
        import ray.data
    except ImportError:
        raise LoopfoldError("--ray needs Ray: pip install 'loopfold[cluster]'") from None
    if not blocks:
        return
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        ray.init(address=None if address == LOCAL else address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else ("; a cluster with token authentication (ray start's "
                                                           "default) needs RAY_AUTH_MODE=token here")  # fmt: skip
        why = str(exc).splitlines()[0]
        raise LoopfoldError(f"--ray {address}: cannot join the Ray cluster ({why}{hint})") from None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = min(workers or cpus, len(blocks))
        threads = max(1, cpus // n)
        ds = ray.data.from_items(blocks, override_num_blocks=len(blocks))
        ds = ds.map_batches(_worker_class(settings, threads), batch_size=1, concurrency=n, num_cpus=threads)
        try:
            for row in ds.iter_rows():
                yield PartDone(int(row["part"]), int(row["records"]),
                               tuple((i, e) for i, e in json.loads(row["failures"])))  # fmt: skip
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise LoopfoldError(f"--ray {address}: a worker failed ({first})") from None
    finally:
        ray.shutdown()
