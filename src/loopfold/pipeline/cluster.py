"""Ray Data runs: ``loopfold predict ... --parquet DIR --ray [ADDRESS]``.

The same pipeline as a one-process ``--parquet`` run, spread over a Ray cluster.
The driver joins the cluster first, then streams the whole input once into input
shards before any prediction starts, one small Parquet file per part of the run (``DIR/.input/part-0000k.parquet``:
the part's records, ``--part-size`` of them, numbered as in
:mod:`loopfold.io.parquet_parts`), holding one part in memory at a time. Ray
Data hands the shards to a pool of workers; each loads the model once, reads a
shard, numbers and predicts its antibodies in one batch (as the one-process run
batches each part), writes the part's Parquet files itself (atomically, so a
killed run keeps every finished part and ``--resume`` goes on from there) and
deletes the shard. The rows are those a one-process run writes.

``ADDRESS`` is a running cluster's head (``HOST:PORT``; ``auto`` finds one
started on this machine); :data:`LOCAL` starts a new cluster inside this run on
this machine's cores, whatever else runs here. On a multi-machine cluster every
node needs loopfold installed (the same model: a worker whose model differs
refuses to run) and the output folder on a file system all nodes share (the
driver checks each part's file is there).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopfold.errors import LoopfoldError, of_kind
from loopfold.io.fasta import AntibodyInput

#: ``--ray`` without an address: start a cluster on this machine for the run.
LOCAL = "local"
#: Input shards, inside the run folder (removed as their parts are written).
SHARDS = ".input"
FIELDS = ("name", "heavy", "light", "other", "error", "error_kind")  # a record's error as its message and kind


@dataclass(frozen=True)
class PartSettings:
    """What every worker needs to predict and write a part."""

    folder: str  # the run's output folder (absolute; shared by all nodes)
    model: str | None
    model_name: str  # the driver's model: a worker loading another refuses
    samples: int
    species: tuple[str, ...] | None
    stop_on_error: bool = False  # --on-error fail: a part with a failed record is not written
    model_sha256: str = ""  # the driver's model digest, in every part's schema metadata


@dataclass(frozen=True)
class PartDone:
    """A part a worker finished: its number, its record count, its failures ``(id, reason, kind)`` and whether
    its files were written (not when a failure stops the run)."""

    part: int
    records: int
    failures: tuple[tuple[str, str, str], ...]
    written: bool = True


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (or start one here for :data:`LOCAL`), quietly, with Ray's
    usage statistics off for a cluster started here.

    Raises:
        LoopfoldError: Ray is not installed, or the cluster cannot be joined.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a cluster started here would report over the network
    if address == LOCAL:  # Ray 2.60's servers listen beyond loopback: every call must carry the cluster's token
        os.environ["RAY_AUTH_MODE"] = "token"  # before Ray is imported, which reads it
    try:
        import ray
    except ImportError:
        raise LoopfoldError("--ray needs Ray: pip install 'loopfold[cluster]'") from None
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    watchdog = start_watchdog() if address == LOCAL else None  # before the cluster starts: a kill then is caught
    try:
        local: dict[str, Any]  # more keyword arguments of ray.init (typed ones among them)
        local = {"_node_ip_address": "127.0.0.1"} if address == LOCAL else {}  # not reachable from the network
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 **local)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else ("; a cluster started with token authentication needs "
                                                           "RAY_AUTH_MODE=token here")  # fmt: skip
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if watchdog is not None:
            watchdog.kill()
        raise LoopfoldError(f"--ray {address}: cannot join the Ray cluster ({why}{hint})") from None


def start_watchdog() -> subprocess.Popen:
    """A separate process that ends the cluster this run started when the run ends, however it ends
    (SIGKILL included): see :func:`watch`."""
    code = f"from loopfold.pipeline.cluster import watch; watch({os.getpid()})"
    return subprocess.Popen([sys.executable, "-c", code],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def watch(driver: int, period: float = 0.25) -> None:
    """While process ``driver`` lives, note its descendants (the processes of the Ray cluster it
    started); once it is gone, end every one still running (SIGTERM, then SIGKILL after 5 s), their
    own children included. Process identity is checked by start time, so a reused PID is left alone."""
    import psutil

    me = os.getpid()
    try:
        parent = psutil.Process(driver)
    except psutil.NoSuchProcess:
        return
    seen: dict[int, psutil.Process] = {}
    while True:
        try:
            if not parent.is_running() or parent.status() == psutil.STATUS_ZOMBIE:
                break
            seen.update((p.pid, p) for p in parent.children(recursive=True) if p.pid != me)
        except psutil.NoSuchProcess:
            break
        time.sleep(period)
    procs: dict[int, psutil.Process] = {}
    for p in seen.values():
        with contextlib.suppress(psutil.Error):
            if p.is_running():
                procs[p.pid] = p
                procs.update((c.pid, c) for c in p.children(recursive=True) if c.pid != me)
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def stage_shards(records: Iterable[AntibodyInput], queue: deque, folder: Path) -> list[int]:
    """Write each part's records (``queue`` gives each record's part as it is read, see
    :meth:`ParquetParts.skip_done`) to its input shard, one part in memory at a time; the part numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopfold.io.atomic import atomic_path

    schema = pa.schema([(f, pa.string()) for f in FIELDS])
    (folder / SHARDS).mkdir(parents=True, exist_ok=True)
    for stale in (folder / SHARDS).glob(".part-*.tmp"):  # a killed run's unfinished shard
        stale.unlink(missing_ok=True)
    for old in (folder / SHARDS).glob("part-*.parquet"):  # shards of an earlier run: restaged below if needed
        old.unlink(missing_ok=True)
    parts: list[int] = []
    rows: list[dict] = []

    def flush() -> None:
        with atomic_path(folder / SHARDS / f"part-{parts[-1]:05d}.parquet") as tmp:
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)

    for rec in records:
        k = queue.popleft()
        if parts and k != parts[-1]:
            flush()
            rows = []
        if not parts or k != parts[-1]:
            parts.append(k)
        err = rec.error
        rows.append({"name": rec.name, "heavy": rec.heavy, "light": rec.light, "other": rec.other,
                     "error": None if err is None else str(err), "error_kind": err.kind if err else None})
    if parts:
        flush()
    return parts


def _worker_class(settings: PartSettings, threads: int) -> type:
    """The worker: a class without constructor arguments (Ray ships it with the settings inside)."""

    class PartWorker:
        def __init__(self) -> None:
            import torch

            from loopfold.api import LoopFold

            torch.set_num_threads(threads)
            species = list(settings.species) if settings.species else None
            self.api = LoopFold(settings.model, fv=False, species=species, workers=threads)
            if self.api.predictor.name != settings.model_name:
                raise LoopfoldError(f"this node loads model {self.api.predictor.name}, the run uses "
                                    f"{settings.model_name}: install the same loopfold on every node")  # fmt: skip

        def __call__(self, batch: dict) -> dict:
            out: dict[str, list] = {"part": [], "records": [], "failures": [], "written": []}
            for k in batch["part"]:
                records, failures, written = self.part(int(k))
                for key, value in (("part", int(k)), ("records", records), ("failures", json.dumps(failures)),
                                   ("written", written)):  # fmt: skip
                    out[key].append(value)
            return out

        def part(self, k: int) -> tuple[int, list[list[str]], bool]:  # failures as JSON-ready lists
            """Predict and write part k: its record count, failures ``[id, reason, kind]``, whether written."""
            import pyarrow.parquet as pq

            from loopfold.io.parquet_parts import ERRORS, LOOPS, MISSING, part_file, part_metadata, write_part

            folder = Path(settings.folder)
            shard, done = folder / SHARDS / f"part-{k:05d}.parquet", part_file(folder, LOOPS, k)
            if not shard.exists() and done.exists():  # a retried task whose part was written before
                ids = set(pq.read_table(done, columns=["id"]).column("id").to_pylist())
                errs = [e for e in pq.read_table(part_file(folder, ERRORS, k)).to_pylist() if e["kind"] != MISSING]
                return len(ids) + len(errs), [[e["id"], e["reason"], e.get("kind") or "other"] for e in errs], True
            abs_ = [AntibodyInput(r["name"], r["heavy"], r["light"], r["other"],
                                  None if r["error"] is None else of_kind(r.get("error_kind") or "", r["error"]))
                    for r in pq.read_table(shard).to_pylist()]  # fmt: skip
            found = self.api.predictions(abs_, settings.samples, chunk=len(abs_), first_chunk=None)  # one batch
            results = [(p.record, e) for p, e in found]
            failures = [[r["id"], str(e), e.kind] for r, e in results if e is not None]
            if failures and settings.stop_on_error:
                return len(results), failures, False
            write_part(folder, k, results, part_metadata(settings.model_name, settings.model_sha256))
            shard.unlink(missing_ok=True)
            return len(results), failures, True

    return PartWorker


def ray_parts(parts: list[int], settings: PartSettings, workers: int | None = None) -> Iterator[PartDone]:
    """Predict and write the staged ``parts`` (see :func:`stage_shards`) on the cluster joined by
    :func:`connect`; yield each part as it finishes (not in part order). Shuts Ray down at the end.

    Args:
        workers: model copies (Ray actors); default one per CPU of the cluster. Each gets the
            cluster's CPUs divided among them, as torch and numbering threads.

    Raises:
        LoopfoldError: a worker failed, or a part's file is not where the driver reads the folder.
    """
    import ray
    import ray.data

    from loopfold.io.parquet_parts import LOOPS, part_file

    shards = Path(settings.folder) / SHARDS
    try:
        if not parts:
            if shards.is_dir() and not any(shards.iterdir()):
                shards.rmdir()
            return
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = min(workers or cpus, len(parts))
        threads = max(1, cpus // n)
        blocks = min(len(parts), 16 * n)  # enough to balance the workers, few enough to stay cheap at 10^5 parts
        ds: ray.data.Dataset = ray.data.from_items([{"part": k} for k in parts], override_num_blocks=blocks)
        ds = ds.map_batches(_worker_class(settings, threads), batch_size=1, concurrency=n, num_cpus=threads)
        try:
            for row in ds.iter_rows():
                k = int(row["part"])
                if row["written"] and not _visible(part_file(Path(settings.folder), LOOPS, k)):
                    raise LoopfoldError(f"--ray: a worker wrote part {k} where this machine cannot see it: --parquet "
                                        f"{settings.folder} must be on a file system every node shares")  # fmt: skip
                yield PartDone(k, int(row["records"]), tuple(tuple(f) for f in json.loads(row["failures"])),
                               bool(row["written"]))  # fmt: skip
        except ray.exceptions.RayError as exc:
            lines = [x for x in str(exc).strip().splitlines() if x.strip()]
            raise LoopfoldError(f"--ray: a worker failed ({lines[-1] if lines else type(exc).__name__})") from None
        if shards.is_dir() and not any(shards.iterdir()):
            shards.rmdir()
    finally:
        ray.shutdown()


def _visible(path: Path, wait: float = 10.0) -> bool:
    """``path`` is a file here, asking again for ``wait`` seconds (a network file system may answer
    "not found" from its cache for a moment after another node wrote it)."""
    import time

    end = time.monotonic() + wait
    while not path.is_file():
        if time.monotonic() > end:
            return False
        time.sleep(0.5)
    return True
