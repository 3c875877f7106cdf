"""Loops placed in an Fv by their template's own framework (issue 21)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopfold.cli import app
from loopfold.constants import CDRS
from loopfold.data.extract import ExtractOptions, extract_file
from loopfold.errors import CheckpointError
from loopfold.fv.build import LoopWindow, framework_placed
from loopfold.fv.template_frames import TemplateFrames, domain_ca, load_frames
from loopfold.io.pdb import read_structure
from loopfold.model.templates import TEMPLATES, TemplateLibrary
from loopfold.numbering.anarci import number_sequence

runner = CliRunner()


@pytest.fixture(scope="module")
def three_structures(tmp_path_factory, request):
    """Three real Fv structures copied into a temporary folder, and a template library of their loops."""
    from tests.conftest import SHARED_DATA

    db = SHARED_DATA / "rosetta_antibody_db/antibody/antibody_database"
    files = sorted(db.glob("pdb*_chothia.pdb.bz2"))[:3] if db.is_dir() else []
    if len(files) < 3:
        pytest.skip(f"{db}: the shared structures are absent")
    folder = tmp_path_factory.mktemp("structures") / "antibody_database"
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    opts = ExtractOptions(source="antibody_database")
    rows = [asdict(r) for f in sorted(folder.iterdir()) for r in extract_file(str(f), opts).records]
    run = folder.parent / "run"
    run.mkdir()
    lib = TemplateLibrary.from_frame(pd.DataFrame(rows))
    lib.save(run / TEMPLATES)
    return folder, run, lib


def test_template_frames_put_each_loop_back_where_its_crystal_has_it(three_structures):
    """Each template's window, placed by its own framework onto the true structure's framework,
    lands on the crystal loop: the frame is in the window's own frame (a wrong or inverted
    transform would put it Ångströms away)."""
    folder, run, lib = three_structures
    r = runner.invoke(app, ["data", "template-frames", str(run), str(folder), "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    frames = load_frames(run / "template_frames.npz")
    n = sum(len(g.ids) for g in lib.groups.values())
    assert report["templates"] == n and report["framed"] == len(frames) >= n - 1
    structures = {f.name[3:7]: read_structure(f) for f in folder.iterdir()}
    worst = 0.0
    for (cdr, _), g in lib.groups.items():
        for loop_id, seq, window in zip(g.ids, g.sequences, g.coords, strict=True):
            pdb, chain = loop_id.split(":")[1].split("_")[:2]
            bb = next(b for b in structures[pdb].chains if b.chain_id == chain)
            dom = next(d for d in number_sequence(bb.sequence, name=loop_id) if d.chain_type == cdr[0])
            a = (len(window) - len(seq)) // 2
            lw = LoopWindow(cdr, cdr[0], 0, a, len(seq), len(window) - a - len(seq), window, None)
            placed, residual = framework_placed(lw, frames.get(loop_id), domain_ca(bb.coords, dom))
            assert placed.placement == "framework" and residual is not None and residual < 0.01
            start = bb.sequence.find(seq)
            crystal = bb.coords[start : start + len(seq)]
            got = placed.window[a : a + len(seq)]
            ok = np.isfinite(crystal).all((1, 2))
            worst = max(worst, float(np.sqrt(((got[ok] - crystal[ok]) ** 2).sum(-1).mean())))
    assert worst < 0.5, worst  # ideal bond lengths in the rebuilt window: a few tenths at most
    # without a frame, or with too few shared positions, the window stays as it is
    lw = LoopWindow("H3", "H", 0, 3, 5, 3, np.zeros((11, 4, 3)), None)
    assert framework_placed(lw, None, np.zeros((128, 3))) == (lw, None)
    assert framework_placed(lw, np.full((128, 3), np.nan), np.zeros((128, 3)))[0].placement == "stems"


def test_template_frames_file_round_trips_and_refuses_a_corrupt_one(tmp_path):
    ca = np.random.default_rng(0).normal(size=(2, 128, 3))
    TemplateFrames(np.array(["a:1abc_H_H3", "a:1abc_L_L1"]), ca, ("H3",), 12.0).save(tmp_path / "f.npz")
    back = load_frames(tmp_path / "f.npz")
    assert back is not None and back.cdrs == ("H3",) and back.radius == 12.0
    np.testing.assert_allclose(back.get("a:1abc_L_L1"), ca[1], atol=1e-5)
    assert back.get("a:2xyz_H_H3") is None and back.get(None) is None
    assert load_frames(tmp_path / "absent.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="bad.npz: not a loopfold template-frames file"):
        load_frames(tmp_path / "bad.npz")
    np.savez(tmp_path / "odd.npz", ids=np.array(["a"]), ca=np.zeros((1, 128, 3)), cdrs=np.array(["H3"]),
             radius=np.array([1.0, 2.0]))  # fmt: skip
    with pytest.raises(CheckpointError, match="odd.npz: not a loopfold template-frames file"):
        load_frames(tmp_path / "odd.npz")


def test_template_frames_command_refuses_a_folder_that_is_not_one(tmp_path):
    r = runner.invoke(app, ["data", "template-frames", str(tmp_path), str(tmp_path / "nowhere")])
    assert r.exit_code != 0 and "not a folder of structures" in r.output


@pytest.fixture(scope="module")
def ranked_run(tmp_path_factory):
    """The shipped model with a ranker that, for H3 only, prefers the network's later candidates."""
    import shutil

    from loopfold.fv.ranking import FEATURES, RANKER_FILE, Ranker
    from loopfold.pipeline.predictor import SHIPPED

    run = tmp_path_factory.mktemp("ranked") / "run"
    shutil.copytree(SHIPPED, run)
    coef = np.zeros(2 * len(FEATURES) + 1)
    coef[FEATURES.index("rank")], coef[-1] = -0.1, 2.0  # predicted rmsd_frame 2.0 - 0.1 x rank
    f = 2 * len(FEATURES)
    Ranker(np.zeros(f), np.ones(f), {"H3": coef}, k=5).save(run / RANKER_FILE)
    return run


def test_ranker_writes_the_candidate_it_predicts_closest(ranked_run):
    from loopfold.api import LoopFold
    from loopfold.fv.ranking import load_ranker
    from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

    assert load_ranker(ranked_run / "ranker.json").k == 5
    ranked = LoopFold(ranked_run).predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="tz")
    plain = LoopFold().predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="tz")
    by = {lp["cdr"]: lp for lp in ranked.record["loops"]}
    before = {lp["cdr"]: lp for lp in plain.record["loops"]}
    h3 = by["H3"]
    assert h3["network_rank"] == 4 and h3["rmsd_frame_predicted"] == pytest.approx(1.6)
    assert h3["template"] != before["H3"]["template"]  # the fifth candidate, not the network's first
    for cdr in ("H1", "H2", "L1", "L2", "L3"):  # CDRs without a model keep the network's choice
        assert "network_rank" not in by[cdr] and by[cdr]["template"] == before[cdr]["template"]
    assert "network_rank" not in before["H3"]
    h = next(c for c in ranked.fv.chains if c.chain_id == "H")
    cn = np.linalg.norm(h.coords[1:, 0] - h.coords[:-1, 2], axis=-1)
    assert cn.max() < 1.4 and h3["closure_rmsd"] < 0.1  # the chosen loop is closed into the chain
    # the written loop is the chosen template's conformation, not the first choice's
    from loopfold.structure.superpose import superposed_rmsd

    lib = TemplateLibrary.load(ranked_run / TEMPLATES)

    def shape(loop_id):
        g = next(g for g in lib.groups.values() if loop_id in g.ids)
        return g.coords[g.ids.index(loop_id)][3:-3]

    written = next(lp for lp in ranked.loops if lp.cdr == "H3").coords
    first = next(lp for lp in plain.loops if lp.cdr == "H3").coords
    to_chosen, to_first = superposed_rmsd(written, shape(h3["template"])), superposed_rmsd(written,
                                                                                        shape(before["H3"]["template"]))
    assert to_chosen < 0.6 and to_chosen < to_first - 0.2, (to_chosen, to_first)
    assert superposed_rmsd(written, first) > 0.2


def test_a_corrupt_ranker_is_refused(tmp_path):
    from loopfold.fv.ranking import load_ranker

    (tmp_path / "ranker.json").write_text('{"features": ["x"], "k": 5, "modes": [], "mean": [0], "scale": [1], '
                                          '"coef": {}}')
    with pytest.raises(CheckpointError, match="ranker.json: a ranker of other features"):
        load_ranker(tmp_path / "ranker.json")
    for text in ("{not json", '{"features": [], "k": 5, "modes": "paired", "mean": [], "scale": [], "coef": []}'):
        (tmp_path / "ranker.json").write_text(text)
        with pytest.raises(CheckpointError, match="ranker.json: not a loopfold ranker"):
            load_ranker(tmp_path / "ranker.json")


def test_a_run_with_template_frames_places_its_loops_by_them(tmp_path, shared_data):
    """The loops trastuzumab gets, framed from their own structures: each is placed by its template's
    framework (said in the record), still closed into the chain, and near where its stems put it."""
    import shutil

    from loopfold.api import LoopFold
    from loopfold.fv.template_frames import build_frames
    from loopfold.pipeline.predictor import SHIPPED
    from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

    plain = LoopFold().predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="tz")
    used = {lp["template"] for lp in plain.record["loops"]}
    run = tmp_path / "run"
    shutil.copytree(SHIPPED, run)
    folders = [shared_data / "rosetta_antibody_db/antibody/antibody_database", shared_data / "sabdab_extra/structures"]
    frames, report = build_frames(TemplateLibrary.load(run / TEMPLATES).subset(used), folders, workers=1)
    assert report["framed"] == len(frames) >= len(used) - 1 and frames.cdrs == ()  # none until validated
    frames = replace(frames, cdrs=CDRS)
    frames.save(run / "template_frames.npz")
    placed = LoopFold(run).predict(heavy=TRASTUZUMAB_VH, light=TRASTUZUMAB_VL, name="tz")
    before = {lp["cdr"]: lp for lp in plain.record["loops"]}
    moved = 0
    for lp in placed.record["loops"]:
        assert lp["template"] == before[lp["cdr"]]["template"]  # the same conformation, placed otherwise
        assert lp["placement"] == ("framework" if frames.get(lp["template"]) is not None else "stems")
        assert before[lp["cdr"]]["placement"] == "stems" and lp["closure_rmsd"] < 0.1
        assert 0 <= lp["closure_shape_rmsd"] < 1.0
        a, b = np.array(lp["coords"]["CA"]), np.array(before[lp["cdr"]]["coords"]["CA"])
        d = float(np.sqrt(((a - b) ** 2).sum(-1).mean()))
        assert d < 2.0, (lp["cdr"], d)
        moved += d > 0.05
    assert moved >= 3  # framework placement is not the stem placement
