"""Streaming: records written as their (small, then growing) chunk finishes, a progress line with the
input's total, and a killed run keeping what it wrote."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from loopfold import LoopFold
from loopfold.cli import progress_text, tracked
from loopfold.errors import InvalidInput
from loopfold.io.fasta import antibodies_from_fasta, count_antibodies
from loopfold.io.tables import antibodies_from_table, count_rows
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL


def _fasta(n: int) -> str:
    return "".join(f">ab{i}|H\n{TRASTUZUMAB_VH}\n>ab{i}|L\n{TRASTUZUMAB_VL}\n" for i in range(n))


def test_a_stream_starts_with_a_small_chunk_and_grows():
    lf = LoopFold(fv=False)
    pulled: list[int] = []

    def records(n: int):
        for i in range(n):
            pulled.append(i)
            yield (f"ab{i}", TRASTUZUMAB_VH, None)

    seen = []
    for k, (pred, err) in enumerate(lf.predict_many(records(40), chunk=16, first_chunk=2)):
        assert err is None and pred.id == f"ab{k}"
        seen.append(len(pulled))  # records read from the input when record k came out
    assert seen == [2] * 2 + [10] * 8 + [26] * 16 + [40] * 14  # chunks of 2, 8, 16 (the most), then 14 left
    pulled.clear()
    next(iter(lf.predict_many(records(40), chunk=16, first_chunk=None)))
    assert len(pulled) == 16  # without first_chunk every chunk is whole
    with pytest.raises(InvalidInput, match="first_chunk 0"):
        lf.predict_many(records(1), first_chunk=0)


def test_input_sizes_are_counted_as_the_readers_give_records(tmp_path):
    fa = tmp_path / "in.fasta"
    fa.write_text(_fasta(3) + f">solo\n{TRASTUZUMAB_VH}\n>ab0|H\n{TRASTUZUMAB_VH}\n")  # ab0 again, apart: its own
    (tmp_path / "in.fasta.gz").write_bytes(gzip.compress(fa.read_bytes()))
    for path in (fa, tmp_path / "in.fasta.gz"):
        assert count_antibodies(path) == len(list(antibodies_from_fasta(path))) == 5
    df = pd.DataFrame({"id": ["a", "b", "c"], "heavy": [TRASTUZUMAB_VH] * 3, "light": [TRASTUZUMAB_VL, "", ""]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_csv(tmp_path / "t.tsv.gz", sep="\t", index=False, compression="gzip")
    df.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv.gz", "t.parquet"):
        assert count_rows(tmp_path / name) == len(list(antibodies_from_table(tmp_path / name))) == 3, name
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b not gzip")
    assert count_antibodies(tmp_path / "bad.gz") is None and count_rows(tmp_path / "bad.gz") is None


def test_the_progress_line_counts_finished_records_of_the_total():
    out = io.StringIO()
    where = Console(file=out, force_terminal=True, width=120)
    assert list(tracked(iter(range(3)), delay=0.0, where=where, total=3)) == [0, 1, 2]
    assert "3 of 3 antibodies" in out.getvalue()
    out = io.StringIO()
    counted = iter([None, None, 5])  # the total becomes known while the run goes on
    list(tracked(iter(range(3)), delay=0.0, where=Console(file=out, force_terminal=True, width=120),
                 total=lambda: next(counted)))  # fmt: skip
    assert "3 of 5 antibodies" in out.getvalue()
    assert progress_text(100, 400, 50.0) == "predicting: 100 of 400 antibodies (2.0/s), 0:00:50, about 0:02:30 left"
    assert progress_text(400, 400, 50.0).endswith("0:00:50")  # done: no time left shown


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_whole_fv_jsonl_run_keeps_every_finished_record(tmp_path, sig):
    """Killed 10 s after the first record: SIGTERM ends with every record it says it wrote on disk,
    whole; after SIGKILL every whole line on disk before the kill is still there, in input order.
    Records came out in small chunks (the first within 64 records, not after a chunk of 512)."""
    fa = tmp_path / "many.fasta"
    fa.write_text(_fasta(1200))
    out, err = tmp_path / "o.jsonl", tmp_path / "stderr.txt"
    with open(err, "w") as fh:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("loopfold")), "predict", "--fasta", str(fa),
                                 "--jsonl", str(out)], stdout=subprocess.DEVNULL, stderr=fh)  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out.exists() and b"\n" in out.read_bytes()):
            time.sleep(0.1)
        assert out.exists(), "no record was streamed in time"
        first = out.read_bytes().count(b"\n")
        time.sleep(10)
        before = out.read_bytes()
    finally:
        proc.send_signal(sig)
        proc.wait(60)
    after = out.read_bytes()
    if sig == signal.SIGTERM:
        said = " ".join(err.read_text().split())
        assert proc.returncode == 143 and after.endswith(b"\n"), said
        written = after.count(b"\n")
        assert f"wrote {written} record(s)" in said, said
    whole = before[: before.rfind(b"\n") + 1]
    assert after.startswith(whole)  # nothing written before the kill is lost
    lines = after[: after.rfind(b"\n") + 1].decode().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [f"ab{i}" for i in range(len(lines))]
    assert all("fv" in json.loads(x) for x in lines)  # whole-Fv records
    assert first < 64 and len(lines) > first, (first, len(lines))
