"""``loopfold predict``: sequences or a structure in, loops out (JSON, JSONL, PDB).

Outputs are checked before any work (never an input, never another output,
writable); ``--jsonl`` streams one finished record per line; ``--json`` and
``--pdb-dir`` are written whole at the end. SIGINT and SIGTERM end the run
with one line saying what was written and leave no temporary file. A record
that cannot be predicted is reported (``{"id": ..., "error": ...}`` in the
outputs, a summary on stderr, exit 3) unless ``--on-error fail``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopfold.cli import app, console, counted, fail, out
from loopfold.cli.runs import EXIT_SOME_FAILED
from loopfold.errors import BadFileName, InvalidFile, LoopfoldError
from loopfold.io.outputs import JsonlStream

if TYPE_CHECKING:
    from loopfold.io.parquet_parts import ParquetParts

STRUCTURE_SUFFIXES = (".gz", ".bz2", ".pdb", ".ent", ".cif", ".mmcif")
#: Longest PDB file name stem (bytes, UTF-8) written for a record (longer names are cut and given a hash).
MAX_NAME = 100


def _pdb_name(name: str, used: dict[str, str], suffix: str = ".pdb") -> str:
    """A safe file name for a record, or a LoopfoldError naming it."""
    bad = any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "/" in name or "\\" in name
    if bad or name in ("", ".", "..") or ".." in name or name.startswith("~"):
        raise BadFileName(f"record {name!r}: name cannot become a file name (path separator, '..' or control char)")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    if len(safe.encode()) > MAX_NAME:  # file systems allow 255 bytes (not characters); keep names unique
        cut = safe.encode()[: MAX_NAME - 9].decode("utf-8", "ignore")
        safe = cut + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    key = safe.lower()
    if key in used:
        raise BadFileName(f"records {used[key]!r} and {name!r} would both be written to {safe}{suffix}")
    used[key] = name
    return safe + suffix


@dataclass
class _Outputs:
    """Where results go, and what has been written so far (for the messages)."""

    json_out: Path | None
    jsonl_out: Path | None
    pdb_dir: Path | None
    inputs: dict[str, Path | None]
    fmt: str = "pdb"
    quiet: bool = False
    refine: bool = False
    parquet: Path | None = None
    parts: ParquetParts | None = None  # the ParquetParts of a --parquet run
    stream: JsonlStream | None = None
    pdb_written: int = 0
    done: int = 0
    #: records in the input, once counted (the progress line's total; None: not counted)
    total: Callable[[], int | None] | None = None
    started: float = field(default_factory=time.monotonic)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, message, kind

    @property
    def jsonl_written(self) -> int:
        """Whole records on disk in the JSONL output (counted by the stream itself)."""
        return self.stream.written if self.stream is not None else 0

    def written(self) -> str:
        """What is on disk now, in words."""
        parts = []
        if self.jsonl_out is not None:
            parts.append(f"{self.jsonl_written} record(s) in {self.jsonl_out}")
        if self.pdb_written:
            parts.append(f"{self.pdb_written} PDB file(s) in {self.pdb_dir}")
        if self.parts is not None:
            parts.append(f"{self.parts.written} finished part(s) in {self.parquet} (--resume goes on from there)")
        return "wrote " + ", ".join(parts) if parts else "nothing written"

    def pdb_path(self, name: str, used: dict[str, str]) -> str:
        """The record's PDB file name; refused when it would land on an input."""
        fname = _pdb_name(name, used, "." + self.fmt)
        others = {**self.inputs, "--json": self.json_out, "--jsonl": self.jsonl_out}
        assert self.pdb_dir is not None  # called only with --pdb-dir
        for opt, path in others.items():
            if path is not None and os.path.realpath(self.pdb_dir / fname) == os.path.realpath(path):
                raise InvalidFile(f"--pdb-dir {self.pdb_dir}: {fname} is the {opt} file; refusing to write over it")
        return fname


def _finish(o: _Outputs, doc: dict, pdbs: list[tuple[str, str]]) -> int:
    """Write the whole-set outputs (PDB set, JSON document), say what was written; the exit status."""
    from loopfold.io.outputs import open_output, write_file_set

    if pdbs:
        assert o.pdb_dir is not None  # structure files are collected only with --pdb-dir
        write_file_set(o.pdb_dir, pdbs, done=lambda n: setattr(o, "pdb_written", n))
    if o.json_out is not None:
        with open_output(o.json_out) as fh:
            fh.write(json.dumps(doc) + "\n")
    elif o.jsonl_out is None and o.pdb_dir is None:
        try:
            out.print_json(json.dumps(doc))
            out.file.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, "standard output") from None
    written = [str(p) for p in (o.json_out, o.jsonl_out, o.pdb_dir) if p is not None]
    if o.failures:
        if o.json_out is None and o.jsonl_out is None:  # the reasons are nowhere else: each one here
            for i, e, _ in o.failures:
                console.print(f"failed: {i}: {e}", highlight=False, soft_wrap=True)
        first = "; ".join(f"{i}: {e}" for i, e, _ in o.failures[:3])
        console.print(f"{len(o.failures)} of {o.done} record(s) failed ({first}"
                      f"{'; ...' if len(o.failures) > 3 else ''})", highlight=False, soft_wrap=True)  # fmt: skip
    if written:
        console.print(f"wrote {', '.join(written)}", highlight=False)
    if o.done > 1:
        from loopfold.cli.runs import summary

        console.print(summary(o), highlight=False, soft_wrap=True)
    return EXIT_SOME_FAILED if o.failures else 0


def _as_format(pdb_text: str, fmt: str, name: str) -> str:
    """PDB text as is, or converted to mmCIF (data block ``name``) for ``--format cif``."""
    from loopfold.io.model_file import pdb_to_cif

    return pdb_to_cif(pdb_text, name) if fmt == "cif" else pdb_text


def _stream(predictor, o: _Outputs, results, on_error: str) -> int:  # noqa: ANN001
    """Consume ``(result, error, prediction)`` triples: stream JSONL, collect the JSON document and the
    structure files (the whole Fv when the prediction has one, else the loops alone)."""
    from loopfold.cli import tracked

    used: dict[str, str] = {}
    collected, pdbs = [], []
    keep_doc = o.json_out is not None or (o.jsonl_out is None and o.pdb_dir is None)
    jsonl = o.stream = JsonlStream(o.jsonl_out) if o.jsonl_out is not None else None
    try:
        for res, err, pred in tracked(results, o.quiet, total=o.total):
            o.done += 1
            if err is None and o.pdb_dir is not None:
                try:
                    if pred.fv is not None and o.refine:
                        ref = pred.refined(o.fmt)
                        text = ref.text
                        if ref.reason:
                            console.print(f"warning: {res['id']}: {ref.reason}", highlight=False, soft_wrap=True)
                        elif "fv" in res:  # the file is the refined model: its own check
                            res["fv"]["geometry_refined"] = ref.geometry.json()
                    elif pred.fv is not None:
                        text = pred.text(o.fmt)
                    else:
                        text = pred.loops_text(o.fmt)
                    pdbs.append((o.pdb_path(res["id"], used), text))
                except LoopfoldError as exc:  # a name that cannot become a file, a refinement that failed
                    res, err = {"id": res["id"], "error": str(exc)}, exc
            if err is None and "fv_error" in res:
                console.print(f"warning: {res['id']}: {res['fv_error']}", highlight=False, soft_wrap=True)
            for note in res.get("fv", {}).get("notes", []) if err is None else []:
                if "NOT closed" in note:
                    console.print(f"warning: {res['id']}: {note}", highlight=False, soft_wrap=True)
            fvj = res.get("fv", {})
            geo = fvj.get("geometry_refined", fvj.get("geometry")) if err is None else None
            if geo is not None and not geo["passed"]:
                console.print(f"warning: {res['id']}: model fails the geometry check: {'; '.join(geo['problems'])}",
                              highlight=False, soft_wrap=True)  # fmt: skip
            if err is not None:
                if on_error == "fail":
                    raise err
                o.failures.append((res["id"], str(err), err.kind))
            if jsonl is not None:
                jsonl.write(res)
            if keep_doc:
                collected.append(res)
    finally:
        if jsonl is not None:
            jsonl.close()
    return _finish(o, predictor.document(collected), pdbs)


@app.command("predict")
def predict_cmd(
    loop: Annotated[str | None, typer.Option("--loop", help="A loop sequence alone (with --cdr).")] = None,
    cdr: Annotated[str | None, typer.Option("--cdr", help="CDR of --loop: H1..L3 (H3 if not given).")] = None,
    stems: Annotated[str | None, typer.Option("--stems", help="Stems of --loop as N,C (e.g. YYC,WGQ).")] = None,
    heavy: Annotated[str | None, typer.Option("--heavy", help="Heavy chain sequence.")] = None,
    light: Annotated[str | None, typer.Option("--light", help="Light chain sequence.")] = None,
    fasta: Annotated[
        Path | None, typer.Option("--fasta", help="FASTA (or .fasta.gz) of antibodies (NAME|H, NAME|L).")
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="CSV/TSV/Parquet of antibodies: heavy/light or AIRR columns.")
    ] = None,
    structure: Annotated[
        Path | None, typer.Option("--structure", help="PDB/mmCIF: replace its CDR loops, keep the framework.")
    ] = None,
    loops: Annotated[str | None, typer.Option("--loops", help="With --structure: e.g. H3,L1 (default all).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write one JSON document ('-': stdout).")] = None,
    jsonl_out: Annotated[
        Path | None, typer.Option("--jsonl", help="Stream one JSON result per line as each finishes ('-': stdout).")
    ] = None,
    pdb_dir: Annotated[
        Path | None, typer.Option("--pdb-dir", help="Write one structure per antibody here (the whole Fv).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Structure files: pdb or cif (mmCIF).")] = "pdb",
    fv: Annotated[
        bool, typer.Option("--fv/--no-fv", help="Build the whole Fv for --heavy/--light/--fasta (default) or "
                                               "predict the loops alone.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line on stderr.")] = False,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="Write loops as Parquet parts in this folder (big runs).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="With --parquet: skip the parts already written.")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --parquet: replace the run in the folder.")] = False,
    part_size: Annotated[int, typer.Option("--part-size", help="With --parquet: records per part.")] = 512,
    ray: Annotated[
        str | None, typer.Option("--ray", help="With --parquet: run on a Ray cluster, its head HOST:PORT or auto; "
                                               "--ray alone starts one on this machine.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="With --ray: model copies (default: one per CPU).")
    ] = None,
    species: Annotated[
        str | None, typer.Option("--species", help="Number chains against these species' profiles only, e.g. "
                                                   "human (comma-separated; faster for one-species repertoires).")
    ] = None,
    refine: Annotated[
        bool, typer.Option("--refine", help="Side chains (PDBFixer) and a restrained minimisation (OpenMM) of the "
                                            "written structures; about 50 s per Fv on 2 cores.")
    ] = False,
    nanobody: Annotated[
        bool | None,
        typer.Option("--nanobody/--no-nanobody", help="A heavy chain alone is a nanobody (VHH) / a conventional VH "
                     "(default: its FR2 hallmarks decide); the JSON's mode says which ran."),
    ] = None,
    samples: Annotated[int, typer.Option(help="Also give K distinct conformations per loop.")] = 0,
    on_error: Annotated[
        str | None,
        typer.Option("--on-error", help="With --fasta. report (default): record failures and go on (exit 3); "
                                        "fail: stop at the first."),
    ] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Run folder (default: the shipped model).")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Id of a single --heavy/--light or --loop query: the JSON id and "
                                                "the structure file's name (default: query).")
    ] = None,
) -> None:
    """Predict CDR loop backbones from sequence."""
    from loopfold.api import LoopFold
    from loopfold.fv.library import LIBRARY_FILE
    from loopfold.io.fasta import AntibodyInput, antibodies_from_fasta, count_antibodies
    from loopfold.io.outputs import check_outputs, interrupts_as_exceptions
    from loopfold.io.parquet_parts import WRITES as PARQUET_WRITES
    from loopfold.model.checkpoint import CONFIG, WEIGHTS
    from loopfold.model.templates import TEMPLATES
    from loopfold.pipeline.predictor import MANIFEST, SHIPPED

    given = [x is not None for x in (loop, heavy or light, fasta, table, structure)]
    batch = fasta if fasta is not None else table  # a file of many antibodies
    if sum(given) != 1:
        fail("give exactly one input: --loop, --heavy/--light, --fasta, --table or --structure")
    if fmt not in ("pdb", "cif"):
        fail(f"--format {fmt!r}: expected pdb or cif")
    if samples < 0 or samples > 100:
        fail(f"--samples {samples}: must be between 0 and 100")
    if on_error not in (None, "report", "fail"):
        fail(f"--on-error {on_error!r}: expected report or fail")
    stem_pair = None
    if stems is not None:
        parts = stems.split(",")
        if len(parts) != 2:
            fail(f"--stems {stems!r}: expected two sequences separated by a comma")
        stem_pair = (parts[0], parts[1])
    ignored = [(loops is not None and structure is None, "--loops goes with --structure"),
               (samples > 0 and structure is not None, "--samples does not go with --structure (loops are "
                                                        "closed onto the structure's stems one way)"),
               ((cdr is not None or stems is not None) and loop is None, "--cdr and --stems go with --loop"),
               (on_error is not None and batch is None, "--on-error goes with --fasta/--table (a single query that "
                                                        "fails always ends the run)"),
               (refine and pdb_dir is None, "--refine changes the written structures: give --pdb-dir"),
               (resume and parquet is None, "--resume goes with --parquet"),
               (force and parquet is None, "--force goes with --parquet"),
               (force and resume, "--force replaces the earlier run, --resume continues it: give one"),
               (parquet is not None and (json_out or jsonl_out or pdb_dir or loop or structure) is not None,
                "--parquet writes the run's results itself: give it without --json/--jsonl/--pdb-dir, for "
                "--fasta, --table or --heavy/--light"),
               (part_size < 1, f"--part-size {part_size}: must be at least 1"),
               (ray is not None and parquet is None, "--ray writes Parquet parts: give --parquet DIR"),
               (workers is not None and ray is None, "--workers goes with --ray"),
               (workers is not None and workers < 1, f"--workers {workers}: must be at least 1"),
               (nanobody is not None and (loop is not None or structure is not None),
                "--nanobody/--no-nanobody go with --heavy/--fasta/--table (a heavy chain alone)"),
               (species is not None and (loop is not None or structure is not None),
                "--species goes with --heavy/--light/--fasta/--table (chains numbered from sequence)"),
               (fmt != "pdb" and pdb_dir is None, "--format goes with --pdb-dir (the structure files)"),
               (not fv and (loop is not None or structure is not None),
                "--no-fv goes with --heavy/--light/--fasta/--table (--loop and --structure build no Fv)"),
               (name is not None and (batch is not None or structure is not None),
                "--name goes with a single --heavy/--light or --loop query (records and structures have their own)"),
               (name is not None and not name.strip(), "--name: give a non-empty id"),
               (refine and (loop is not None or not (fv or structure is not None)),
                "--refine goes with whole-Fv or --structure outputs (not --loop or --no-fv)")]  # fmt: skip
    for bad, message in ignored:
        if bad:
            fail(message)
    run_dir = model if model is not None else SHIPPED
    model_files = {f"--model {run_dir}/{f}": run_dir / f for f in (CONFIG, WEIGHTS, TEMPLATES, MANIFEST, LIBRARY_FILE)}
    model_files["the shipped framework library"] = SHIPPED / LIBRARY_FILE  # a run without one uses it
    for member in sorted((run_dir / "members").glob("*/*")) if (run_dir / "members").is_dir() else []:
        model_files[f"--model {member}"] = member
    o = _Outputs(json_out, jsonl_out, pdb_dir, {"--fasta": fasta, "--table": table, "--structure": structure,
                                                **model_files},
                 fmt, quiet, refine, parquet)  # fmt: skip
    with interrupts_as_exceptions():
        try:
            check_outputs(o.inputs, {"--json": json_out, "--jsonl": jsonl_out}, {"--pdb-dir": pdb_dir},
                          {"--parquet": (parquet, resume or force, PARQUET_WRITES)})  # fmt: skip
            pdb_name = None
            if structure is not None and pdb_dir is not None:
                name = structure.name
                for suffix in STRUCTURE_SUFFIXES:
                    name = name.removesuffix(suffix)
                pdb_name = o.pdb_path(name, {})
            if refine:
                from loopfold.fv.refine import require_refinement

                require_refinement()  # before any work: OpenMM and PDBFixer are optional
            kinds = [x.strip().lower() for x in species.split(",") if x.strip()] if species is not None else None
            api = LoopFold(model, fv=fv and loop is None and structure is None and parquet is None, species=kinds,
                           nanobody=nanobody)  # fmt: skip
            predictor = api.predictor
            if structure is not None:
                from loopfold.cli.structure import structure_command

                code = structure_command(api, o, structure, loops, pdb_name)
            elif loop is not None:
                one = api.predict_loop(loop, cdr or "H3", stem_pair, samples, name or "query")
                code = _stream(predictor, o, iter([(one.record, None, one)]), "fail")
            else:
                abs_: Iterable[AntibodyInput]
                if batch is None:
                    abs_ = [AntibodyInput(name or "query", heavy, light)]
                elif fasta is not None:
                    abs_ = antibodies_from_fasta(fasta)
                    o.total = counted(count_antibodies, fasta, o.quiet)
                else:
                    from loopfold.io.tables import antibodies_from_table, count_rows

                    assert table is not None  # batch is table when fasta is None
                    abs_ = antibodies_from_table(table)
                    o.total = counted(count_rows, table, o.quiet)
                if parquet is not None:
                    from loopfold.cli.runs import parquet_command

                    policy = (on_error or "report") if batch is not None else "fail"
                    raise typer.Exit(parquet_command(api, o, abs_, str(batch or "--heavy/--light"), samples,
                                                     part_size, resume, force, policy, model, ray, workers))
                # a batch reports bad records and goes on; a single antibody's failure is the run's
                results = ((p.record, e, p) for p, e in api.predictions(abs_, samples))
                code = _stream(predictor, o, results, (on_error or "report") if batch is not None else "fail")
        except KeyboardInterrupt as exc:
            signame = str(exc) or "SIGINT"
            fail(f"interrupted by {signame} after {o.done} record(s); {o.written()}",
                 code=143 if signame == "SIGTERM" else 130)  # fmt: skip
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"writing output failed{where}: {exc.strerror or exc}; {o.written()}")
        except LoopfoldError as exc:
            fail(f"{exc}; {o.written()}" if o.jsonl_written or o.pdb_written else str(exc))
    raise typer.Exit(code)
