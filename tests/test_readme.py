"""The README's predict examples run as written (with real sequences for the elided ones)."""

import json
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from loopfold.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_loop_example_runs():
    lines = [x for x in README.read_text().splitlines() if x.startswith("loopfold predict --loop")]
    assert lines, "README lost its --loop example"
    args = shlex.split(re.sub(r"\[(.*?)\]", r"\1", lines[0]), comments=True)[1:]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (lp,) = doc["results"][0]["loops"]
    assert lp["sequence"] == "ARDYYGSSYFDY" and lp["stem_n"] == "YYC" and lp["stem_c"] == "WGQ"


def test_readme_python_api_doctest_runs(tmp_path, monkeypatch):
    import doctest

    import gemmi

    monkeypatch.chdir(tmp_path)  # the example saves trastuzumab.pdb in the working folder
    res = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 10 and res.failed == 0
    st = gemmi.read_structure(str(tmp_path / "trastuzumab.pdb"))
    assert [c.name for c in st[0]] == ["H", "L"]
