"""--ray: the --parquet pipeline on a real local Ray cluster (``ray start --head`` on 127.0.0.1, 2 workers)
writes the rows a one-process run writes, reports bad records, and resumes."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loopfold.cli import app, optional_value
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

try:
    import ray  # noqa: F401 - the cluster extra, which the README set-up and CI install
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed (pip install 'loopfold[cluster]')", allow_module_level=True)

pytestmark = pytest.mark.slow  # a Ray cluster per test: `-m "not slow"` leaves them out

N = 240  # antibodies
BIN = Path(sys.executable).parent
#: the test cluster's own token (Ray's token authentication), usage statistics off
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _fasta(path: Path) -> Path:
    """N trastuzumab variants (random CDR-H3 and CDR-L3 letters), with one bad record among them."""
    rng = np.random.default_rng(7)
    aa = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    i, j = TRASTUZUMAB_VH.index("WGGDGFYAMDY"), TRASTUZUMAB_VL.index("QQHYTTPPT")
    with open(path, "w") as fh:
        for k in range(N):
            h3, l3 = "".join(rng.choice(aa, rng.integers(6, 15))), "QQ" + "".join(rng.choice(aa, 7))
            fh.write(f">ab{k}|H\n{TRASTUZUMAB_VH[:i]}{h3}{TRASTUZUMAB_VH[i + 11 :]}\n"
                     f">ab{k}|L\n{TRASTUZUMAB_VL[:j]}{l3}{TRASTUZUMAB_VL[j + 9 :]}\n")  # fmt: skip
            if k == 100:
                fh.write(">broken|H\nEVQLVESGGGLVQPGG*SLRLSCAAS\n")
    return path


@pytest.fixture(scope="module")
def cluster():
    """A Ray head of its own on 127.0.0.1 with 2 CPUs (``ray start --head --block`` in its own session, with
    its own temporary folder), stopped afterwards without touching any other Ray on the machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="lfray", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
                             "--disable-usage-stats", "--temp-dir", temp],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # the head is up when its port answers
            assert head.poll() is None, f"ray start --head exited with {head.returncode}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the Ray head did not start within 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _loopfold(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "loopfold"), *args], capture_output=True, text=True, timeout=600, env=ENV)


def test_ray_cluster_writes_the_rows_of_a_one_process_run_and_resumes(cluster, tmp_path):
    fa = _fasta(tmp_path / "ab.fasta")
    args = ["predict", "--fasta", str(fa), "--part-size", "50", "--quiet"]
    one = CliRunner().invoke(app, [*args, "--parquet", str(tmp_path / "one")])
    assert one.exit_code == 3, one.output  # the bad record fails, the others are written
    r = _loopfold(*args, "--parquet", str(tmp_path / "ray"), "--ray", cluster, "--workers", "2")
    assert r.returncode == 3, r.stderr
    assert f"summary: {N} of {N + 1} record(s) predicted; failed: 1 letter not an amino acid" in r.stderr, r.stderr
    expect = pq.read_table(tmp_path / "one")  # the run folder reads as its loop table
    assert expect.num_rows == 6 * N
    assert pq.read_table(tmp_path / "ray").equals(expect)
    errors = [pq.read_table(p).to_pylist() for p in sorted((tmp_path / "ray" / "_errors").glob("part-*.parquet"))]
    assert [e["id"] for part in errors for e in part] == ["broken"]
    # a part lost (a run killed before it finished): --resume predicts it again on the cluster, keeps the rest
    (tmp_path / "ray" / "loops/part-00002.parquet").unlink()
    kept = os.stat(tmp_path / "ray" / "loops/part-00000.parquet").st_mtime_ns
    (tmp_path / "ray" / ".input").mkdir()  # a killed run's shards: a stale one and an unfinished one
    (tmp_path / "ray" / ".input" / "part-00007.parquet").write_bytes(b"stale")
    (tmp_path / "ray" / ".input" / ".part-00002.parquet.x.tmp").write_bytes(b"half")
    r = _loopfold(*args, "--parquet", str(tmp_path / "ray"), "--ray", cluster, "--resume")
    said = " ".join(r.stderr.split())
    assert r.returncode == 3 and "4 finished part(s) kept" in said, r.stderr  # part 2 holds the bad record
    assert "summary: 49 of 50 record(s) predicted; failed: 1 letter not an amino acid" in said
    assert os.stat(tmp_path / "ray" / "loops/part-00000.parquet").st_mtime_ns == kept
    assert pq.read_table(tmp_path / "ray").equals(expect)
    meta = pq.read_schema(tmp_path / "ray" / "loops/part-00002.parquet").metadata  # a worker's part names the model
    assert meta[b"model_sha256"] == json.loads((tmp_path / "ray" / "_run.json").read_text())["model_sha256"].encode()
    assert not (tmp_path / "ray" / ".input").exists()  # the input shards go once their parts are written
    # --on-error fail: the part holding the bad record is not written, the run ends naming it
    r = _loopfold(*args, "--parquet", str(tmp_path / "stop"), "--ray", cluster, "--on-error", "fail")
    assert r.returncode != 0 and "broken" in r.stderr, r.stderr
    assert not (tmp_path / "stop" / "loops/part-00002.parquet").exists()
    r = _loopfold(*args, "--parquet", str(tmp_path / "stop"), "--ray", cluster, "--resume")  # then reported
    assert r.returncode == 3 and pq.read_table(tmp_path / "stop").equals(expect), r.stderr


def test_ray_without_an_address_means_a_cluster_on_this_machine():
    assert optional_value(["predict", "--parquet", "o", "--ray"], "--ray", "local")[-1] == "--ray=local"
    assert optional_value(["--ray", "--quiet"], "--ray", "local") == ["--ray=local", "--quiet"]
    assert optional_value(["--ray", "10.0.0.1:6379"], "--ray", "local") == ["--ray", "10.0.0.1:6379"]


def test_ray_alone_starts_a_new_local_cluster_and_a_failed_join_leaves_no_run_folder(tmp_path, monkeypatch):
    import ray

    asked = []

    def refuse(address=None, **kw):
        asked.append(address)
        raise ConnectionError("no cluster there")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")  # Ray would join this if given no address
    runner = CliRunner()
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--parquet", str(tmp_path / "p"), "--ray", "local"])
    assert asked == ["local"]
    said = " ".join(r.output.split())
    assert r.exit_code != 0 and "--ray local: cannot join the Ray cluster (no cluster there" in said
    assert not (tmp_path / "p").exists()  # no run.json: the next run needs no --resume


def test_ray_and_workers_need_their_partners(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--ray", "local"])
    assert r.exit_code == 2 and "--ray writes Parquet parts: give --parquet DIR" in r.output
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--parquet", str(tmp_path / "p"), "--workers", "2"])
    assert r.exit_code == 2 and "--workers goes with --ray" in r.output
    r = runner.invoke(app, ["predict", "--heavy", TRASTUZUMAB_VH, "--species", "martian"])
    assert r.exit_code == 2 and "species (--species) martian: expected some of human" in " ".join(r.output.split())


def test_a_local_cluster_ends_with_its_driver_even_after_sigkill():
    import psutil

    script = ("import time\nfrom loopfold.pipeline.cluster import connect\nconnect('local')\nimport ray\n"
              "print(ray.get(ray.remote(lambda: 'ready').remote()), flush=True)\n"
              "print(ray.get_runtime_context().gcs_address, flush=True)\ntime.sleep(600)\n")  # fmt: skip
    env = {k: v for k, v in ENV.items() if not k.startswith("RAY_AUTH")} | {"RAY_AUTH_MODE": "disabled"}
    drv = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                           start_new_session=True)  # fmt: skip
    try:
        assert drv.stdout.readline().strip() == "ready"
        gcs = drv.stdout.readline().strip()
        cluster = [p for p in psutil.Process(drv.pid).children(recursive=True)
                   if "watch(" not in " ".join(p.cmdline())]  # fmt: skip
        assert any("raylet" in p.name() for p in cluster) and any("gcs_server" in p.name() for p in cluster)
        _assert_listening_beyond_loopback_needs_the_token(cluster, gcs, env)
        drv.kill()  # SIGKILL: no atexit, no ray.shutdown
        drv.wait()
        _, alive = psutil.wait_procs(cluster, timeout=20)
        assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], alive
    finally:
        if drv.poll() is None:
            drv.kill()


def _listening(procs) -> dict[str, set[str]]:
    """The addresses the processes listen on (TCP), each with the names of the processes."""
    import psutil

    pids = {p.pid: p.name() for p in procs}
    found: dict[str, set[str]] = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            found.setdefault(c.laddr.ip, set()).add(pids[c.pid])
    return found


def _assert_listening_beyond_loopback_needs_the_token(cluster, gcs: str, env: dict) -> None:
    """The listening sockets of the cluster loopfold started (the driver's environment said
    ``RAY_AUTH_MODE=disabled``): Ray 2.60 binds its servers beyond loopback (docs/reliability.md), so a
    client without the cluster's token, from the machine's own network address, must be refused."""
    found = _listening(cluster)
    assert found, "the cluster listens on nothing: the socket listing is broken"
    beyond = {ip: names for ip, names in found.items() if ip not in ("127.0.0.1", "::1")}
    if not beyond:
        return  # a Ray that binds loopback only: nothing reachable from the network
    import psutil

    port = gcs.rsplit(":", 1)[1]
    host = next(a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                if a.family == socket.AF_INET and not a.address.startswith("127."))  # fmt: skip
    join = f"import ray; ray.init(address='{host}:{port}'); print('JOINED')"
    plain = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    insider = plain | {"RAY_AUTH_MODE": "token"}  # the cluster's own token, from ~/.ray/auth_token
    r = subprocess.run([sys.executable, "-c", join], env=insider, capture_output=True, text=True, timeout=120)
    assert "JOINED" in r.stdout, f"{host}:{port} cannot be joined even with the token: {r.stderr[-300:]}"
    outsider = plain | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    r = subprocess.run([sys.executable, "-c", join], env=outsider, capture_output=True, text=True, timeout=120)
    assert "JOINED" not in r.stdout and r.returncode != 0, f"a client with a wrong token joined {host}:{port}"

