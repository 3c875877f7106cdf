"""FvNet: whole-Fv context, templates as input, structural loss, predicted error."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from loopfold.api import Loop, Prediction
from loopfold.data.extract import ExtractOptions, extract_file
from loopfold.errors import CheckpointError
from loopfold.io.fasta import AntibodyInput
from loopfold.model.config import TrainConfig
from loopfold.model.context import (
    GAP,
    IMGT_POSITIONS,
    NO_SLOT,
    context_tokens,
    frame_context,
    numbered_chain,
    window_slots,
    with_partners,
)
from loopfold.model.fv_inputs import frame_batch, frame_coords
from loopfold.model.fvnet import FvNet, fv_loss, kabsch_rmsd
from loopfold.model.rebuild_torch import rebuild_backbone_torch
from loopfold.model.template_input import K_TEMPLATES, retrieve
from loopfold.model.templates import TemplateLibrary
from loopfold.numbering.anarci import NumberedDomain, number_sequence
from loopfold.pipeline.predictor import Predictor
from loopfold.structure.rebuild import ideal_geometry, rebuild_backbone
from loopfold.structure.superpose import superposed_rmsd
from loopfold.train.loop import train_model
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL, make_backbone, write_pdb

CFG = TrainConfig(model="fvnet", hidden=16, max_len=24, n_bins=4, epochs=2, batch_size=4, patience=5)
TARGETS = ("target", "target_mask", "angles", "cis", "cis_mask", "loop_mask")  # Batch's training targets


def test_torch_nerf_with_bond_angles_matches_numpy():
    rng = np.random.default_rng(0)
    tors, bond = rng.uniform(-180, 180, (2, 7, 3)), rng.uniform(105, 125, (2, 7, 3))
    geom = replace(ideal_geometry((2, 7)), n_ca_c=bond[..., 0], ca_c_n=bond[..., 1], c_n_ca=bond[..., 2])
    want = rebuild_backbone(tors, geom)
    got = rebuild_backbone_torch(torch.tensor(np.radians(tors)), torch.tensor(bond)).numpy()
    np.testing.assert_allclose(got[..., :3, :], want[..., :3, :], atol=1e-9)
    for k in range(3):  # each bond angle is really used
        one = bond.copy()
        one[..., k] += 5.0
        moved = rebuild_backbone_torch(torch.tensor(np.radians(tors)), torch.tensor(one)).numpy()
        assert superposed_rmsd(moved[0], got[0]) > 0.05


def test_kabsch_rmsd_matches_numpy_and_ignores_masked_atoms():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 10, 3)), rng.normal(size=(2, 10, 3))
    mask = np.ones((2, 10))
    mask[1, 7:] = 0
    b[1, 7:] += 100.0  # far off, but masked
    pred = torch.tensor(a, requires_grad=True)
    got = kabsch_rmsd(pred, torch.tensor(b), torch.tensor(mask))
    assert got[0].item() == pytest.approx(superposed_rmsd(a[0], b[0]), abs=1e-5)
    assert got[1].item() == pytest.approx(superposed_rmsd(a[1, :7], b[1, :7]), abs=1e-5)
    got.sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0].abs().sum() > 0


def test_context_puts_conserved_residues_at_their_imgt_slots():
    heavy = numbered_chain(TRASTUZUMAB_VH, number_sequence(TRASTUZUMAB_VH)[0])
    light = numbered_chain(TRASTUZUMAB_VL, number_sequence(TRASTUZUMAB_VL)[0])
    tokens = context_tokens([heavy, light])
    aa = "ACDEFGHIKLMNPQRSTVWY"
    assert aa[tokens[22]] == "C" and aa[tokens[40]] == "W" and aa[tokens[103]] == "C"  # VH Cys23, Trp41, Cys104
    assert aa[tokens[IMGT_POSITIONS + 22]] == "C" and aa[tokens[IMGT_POSITIONS + 103]] == "C"  # VL
    start = TRASTUZUMAB_VH.index("WGGDGFYAMDY")
    slots = window_slots(heavy, start, 3, 17)
    assert list(slots[:4]) == [103, 104, 105, 106]  # IMGT C104 S105 R106, then W107 starts the window loop
    assert window_slots(heavy, None, 3, 5).tolist() == [NO_SLOT] * 5


def _library() -> TemplateLibrary:
    rows = []
    for i, seq in enumerate(["ARDYW", "ARDYF", "GGGGG"]):
        xyz = make_backbone("AA" + seq + "AA", seed=i).coords
        rows.append({"loop_id": f"t{i}", "cdr": "H3", "sequence": seq, "coords": xyz,
                     "phi": [0.0] * 9, "has_chain_break": False, "has_missing_atoms": False,
                     "definition": "north"})  # fmt: skip
    return TemplateLibrary.from_frame(pd.DataFrame(rows))


def test_template_retrieval_hides_the_loop_itself_and_close_loops_under_a_cap():
    lib = _library()
    idx, ident, names = retrieve(lib, "H3", 9, ["ARDYW"])
    assert names[0][:2] == ["t0", "t1"] and ident[0, 0] == 1.0 and idx.shape == (1, K_TEMPLATES)
    _, _, names = retrieve(lib, "H3", 9, ["ARDYW"], exclude=[{"t0"}])
    assert names[0][0] == "t1"
    _, ident, names = retrieve(lib, "H3", 9, ["ARDYW"], caps=np.array([0.7]))
    assert names[0] == ["t2"] and ident[0, 0] < 0.7
    assert retrieve(lib, "H1", 9, ["ARDYW"])[2] == [[]]


@pytest.fixture
def fab_rows(tmp_path):
    """Loops (with coordinates and chains) cut from two made-up Fab structures."""
    records = []
    for k in range(2):
        heavy = make_backbone(TRASTUZUMAB_VH, "H", seed=10 + k)
        light = make_backbone(TRASTUZUMAB_VL, "L", seed=20 + k)
        path = write_pdb(tmp_path / f"fab{k}.pdb", [heavy, light])
        records += extract_file(str(path), ExtractOptions()).records
    df = pd.DataFrame([r.to_row() for r in records])
    df["coords"] = [r.coords for r in records]  # as the dataset reader returns them
    df["pdb_id"] = [f"fab{i // 6}" for i in range(len(df))]
    df["loop_id"] = [f"{p}_{c}" for p, c in zip(df["pdb_id"], df["cdr"], strict=True)]
    return df[df["stem_n"].str.len() + df["sequence"].str.len() + df["stem_c"].str.len() <= CFG.max_len]


def test_structure_loss_trains_bond_angles_and_adds_to_the_angle_loss(fab_rows):
    batch, _ = frame_batch(fab_rows, CFG.max_len, None, coords=True)
    assert np.isfinite(frame_coords(fab_rows, CFG.max_len)).any()
    torch.manual_seed(0)
    net = FvNet(CFG)
    out = net(**batch.inputs())
    angles_only = fv_loss(out, batch, replace(CFG, structure_weight=0.0))
    both = fv_loss(out, batch, CFG)
    assert both.item() > angles_only.item() + 0.1
    both.backward()
    assert net.bond.weight.grad.abs().sum() > 0  # bond angles reach the loss only through the structure


def test_fvnet_trains_predicts_with_context_error_and_b_factors(fab_rows, tmp_path):
    train, val = fab_rows[fab_rows["pdb_id"] == "fab0"], fab_rows[fab_rows["pdb_id"] == "fab1"]
    train_model(CFG, train, val, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "config.json").read_text())["info"]
    assert len(info["error_model"]["coef"]) == len(info["error_model"]["features"])
    p = Predictor(tmp_path / "run")
    ab = AntibodyInput("tz", TRASTUZUMAB_VH, TRASTUZUMAB_VL)
    queries = p.antibody_queries(ab)
    loops = p.predict_queries(queries)
    h3 = next(lp for lp in loops if lp.cdr == "H3")
    assert h3.values.error is not None and len(h3.values.error) == len(h3.sequence) and h3.rmsd_predicted > 0
    assert h3.rmsd_predicted == pytest.approx(np.sqrt(np.mean(np.square(h3.values.error))))
    blank = np.full_like(queries[0].context, GAP)
    other = p.predict_queries([replace(q, context=blank) for q in queries])  # same slots, no Fv residues
    assert any(not np.array_equal(a.values.angles, b.values.angles)
               for a, b in zip(loops, other, strict=True))  # the Fv context is read  # fmt: skip
    pdb = Prediction("tz", tuple(Loop.from_result(r) for r in loops), None, {}, p.name).loops_text()
    first_ca = next(line for line in pdb.splitlines() if line.startswith("ATOM") and line[12:16] == " CA ")
    assert float(first_ca[60:66]) == pytest.approx(loops[0].values.error[0], abs=0.01)
    # evaluation rows get the same Fv context and slots as queries of the same antibody
    rows = with_partners(val).reset_index(drop=True)
    batch, _ = frame_batch(rows, CFG.max_len, p.templates)
    qb = {q.cdr: q for q in queries}
    for i, row in rows.iterrows():
        q = qb[row["cdr"]]
        assert (batch.context[i].numpy() == q.context).all()
        want = window_slots(q.numbered, q.start, len(row["stem_n"]), int(batch.lengths[i]))
        assert (batch.slots[i, : len(want)].numpy() == want).all()


def test_corrupt_error_model_is_refused(fab_rows, tmp_path):
    train, val = fab_rows[fab_rows["pdb_id"] == "fab0"], fab_rows[fab_rows["pdb_id"] == "fab1"]
    train_model(replace(CFG, epochs=1), train, val, tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    doc = json.loads(path.read_text())
    doc["info"]["error_model"]["coef"] = [1.0, "x"]
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="error_model"):
        Predictor(tmp_path / "run")


def test_batched_loop_rmsd_matches_kabsch():
    from loopfold.model.template_targets import _loop_rmsd

    rng = np.random.default_rng(3)
    cands, true = rng.normal(size=(5, 12, 3)), rng.normal(size=(12, 3))
    want = [superposed_rmsd(c, true) for c in cands]
    np.testing.assert_allclose(_loop_rmsd(cands, true), want, atol=1e-9)
    rot = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert _loop_rmsd((true @ rot.T + 3.0)[None], true)[0] == pytest.approx(0.0, abs=1e-9)


def test_candidates_exclude_the_loop_itself_and_carry_true_rmsds():
    from loopfold.model.template_targets import candidate_targets

    lib = _library()
    xyz = lib.groups[("H3", 9)].coords
    rows = pd.DataFrame([{"loop_id": "t0", "cdr": "H3", "sequence": "ARDYW", "stem_n": "AA", "stem_c": "AA",
                          "coords": xyz[1], "has_missing_atoms": False},
                         {"loop_id": "q", "cdr": "H3", "sequence": "ARDYF", "stem_n": "AA", "stem_c": "AA",
                          "coords": xyz[1], "has_missing_atoms": False}])  # fmt: skip
    centers = np.array([[-60.0, -45.0], [-120.0, 130.0], [60.0, 40.0], [-80.0, 170.0]])
    t = candidate_targets(rows, lib, centers, 12)
    assert np.isfinite(t["cand_rmsd"][0]).sum() == 2  # t1 and t2: never t0 itself
    assert t["cand_ident"][0, 0] == pytest.approx(0.8) and t["cand_rmsd"][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert t["cand_rmsd"][1, 0] == pytest.approx(0.0, abs=1e-6)  # q's most identical template is t1 (itself)
    assert (t["cand_bins"][0, 0, :9] >= 0).sum() >= 7 and (t["cand_bins"][0, 0, 9:] == -1).all()
    strict = candidate_targets(rows, lib, centers, 12, cap=0.7)
    assert np.isfinite(strict["cand_rmsd"][0]).sum() == 1 and strict["cand_ident"][0, 0] < 0.7


def test_expected_template_rmsd_rewards_scoring_the_closest_template_highest():
    from loopfold.model.features import Batch
    from loopfold.model.fvnet import expected_template_rmsd

    bins = torch.tensor([[[0, 0, 0], [1, 1, 1]]])  # two candidates, 3 residues, bins 0 and 1
    batch = Batch(*(None,) * 3, **dict.fromkeys(TARGETS), cand_bins=bins, cand_ident=torch.zeros(1, 2),
                  cand_rmsd=torch.tensor([[0.5, 3.0]]))  # fmt: skip
    good = {"bin_logits": torch.tensor([[[4.0, 0.0]] * 3])}
    bad = {"bin_logits": torch.tensor([[[0.0, 4.0]] * 3])}
    assert expected_template_rmsd(good, batch, 0.0) < 1.0 < 2.5 < expected_template_rmsd(bad, batch, 0.0)
    batch = replace(batch, cand_ident=torch.tensor([[0.0, 1.0]]))
    assert expected_template_rmsd(good, batch, 20.0) > 2.5  # identity can outweigh the bins


def test_ensemble_members_load_and_are_checked(fab_rows, tmp_path):
    import shutil

    train, val = fab_rows[fab_rows["pdb_id"] == "fab0"], fab_rows[fab_rows["pdb_id"] == "fab1"]
    train_model(TrainConfig(hidden=16, max_len=24, n_bins=4, epochs=1, batch_size=4), train, val, tmp_path / "ln")
    train_model(replace(CFG, epochs=1), train, val, tmp_path / "fv")
    shutil.copytree(tmp_path / "ln", tmp_path / "ens")
    shutil.copytree(tmp_path / "fv", tmp_path / "ens" / "members" / "fv")
    p = Predictor(tmp_path / "ens")
    assert [m.name for m in p.members] == ["fv"] and p.reads_fv  # a LoopNet run with an FvNet member
    queries = p.antibody_queries(AntibodyInput("tz", TRASTUZUMAB_VH, TRASTUZUMAB_VL))
    fv_doc = json.loads((tmp_path / "fv" / "config.json").read_text())
    fv_doc["info"]["output"] = "template"  # alone, it writes the template its bins choose, as a member votes
    (tmp_path / "fv" / "config.json").write_text(json.dumps(fv_doc))
    alone = {n: Predictor(tmp_path / n).predict_queries(queries) for n in ("ln", "fv")}
    main = json.loads((tmp_path / "ens" / "config.json").read_text())
    main["info"]["ensemble_weights"] = {c: ([1.0, 0.0] if c[0] == "H" else [0.0, 1.0]) for c in ("H1", "H2", "H3",
                                                                                            "L1", "L2", "L3")}
    (tmp_path / "ens" / "config.json").write_text(json.dumps(main))
    loops = Predictor(tmp_path / "ens").predict_queries(queries)  # heavy CDRs from the run, light from the member
    for k, lp in enumerate(loops):
        want = alone["ln" if lp.cdr[0] == "H" else "fv"][k]
        assert lp.template == want.template and np.array_equal(lp.values.angles, want.values.angles), lp.cdr
    main = json.loads((tmp_path / "ens" / "config.json").read_text())
    main["info"]["output"] = "structure"  # members only vote on templates
    (tmp_path / "ens" / "config.json").write_text(json.dumps(main))
    with pytest.raises(CheckpointError, match="members need a run that writes templates"):
        Predictor(tmp_path / "ens")
    main["info"]["output"] = "template"
    (tmp_path / "ens" / "config.json").write_text(json.dumps(main))
    doc = json.loads((tmp_path / "ens" / "members" / "fv" / "config.json").read_text())
    doc["info"]["definition"] = "imgt"
    (tmp_path / "ens" / "members" / "fv" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="ensemble member definition"):
        Predictor(tmp_path / "ens")


def test_partners_come_from_the_whole_dataset_and_insertions_do_not_take_a_slot(fab_rows):
    heavy_only = fab_rows[(fab_rows["pdb_id"] == "fab0") & (fab_rows["chain_type"] == "H")]
    with_l = with_partners(fab_rows)
    part = with_l[(with_l["pdb_id"] == "fab0") & (with_l["chain_type"] == "H")]
    assert set(part["partner_sequence"]) == {TRASTUZUMAB_VL}
    alone = np.stack([c.tokens for c in frame_context(heavy_only)])  # light rows absent, no column: no partner
    paired = np.stack([c.tokens for c in frame_context(part)])  # the column carries the partner into a split part
    assert (alone[:, IMGT_POSITIONS:] == GAP).all() and (paired[:, IMGT_POSITIONS + 22] != GAP).all()
    dom = NumberedDomain("H", "imgt", (0, 1, 2), ((111, ""), (111, "A"), (112, "")))
    tokens = context_tokens([numbered_chain("CDE", dom)])
    assert "ACDEFGHIKLMNPQRSTVWY"[tokens[110]] == "C"  # IMGT 111, not its insertion 111A


def test_augment_swaps_template_inputs_and_candidates_together():
    from loopfold.model.features import Batch
    from loopfold.train.loop import augment

    b, L, C = 64, 5, 3
    base = Batch(torch.zeros(b, L, 2), torch.full((b,), L), torch.ones(b, L, dtype=torch.bool),
                 **dict.fromkeys(TARGETS),
                 templates=torch.zeros(b, L, 4), context=torch.zeros(b, 8, dtype=torch.long),
                 slots=torch.zeros(b, L, dtype=torch.long), cand_bins=torch.zeros(b, C, L, dtype=torch.long),
                 cand_ident=torch.zeros(b, C), cand_rmsd=torch.zeros(b, C))  # fmt: skip
    strict = replace(base, templates=torch.ones(b, L, 4), cand_bins=torch.ones(b, C, L, dtype=torch.long),
                     cand_ident=torch.ones(b, C), cand_rmsd=torch.ones(b, C))  # fmt: skip
    out = augment(base, strict, np.random.default_rng(0))
    took = out.cand_ident[:, 0] == 1
    assert 10 < int(took.sum()) < 54  # about half the rows see the strict view
    assert (out.cand_rmsd[:, 0] == took).all() and (out.cand_bins[:, 0, 0] == took).all()
    shown = out.templates[:, 0, 0] == 1
    assert (shown <= took).all() and int((took & ~shown).sum()) > 0  # some rows' template inputs are dropped
    assert int((out.context[:, 0] == GAP).sum()) > 0  # some rows lose the Fv context


def test_shared_contexts_are_encoded_once_with_the_same_result():
    torch.manual_seed(0)
    net = FvNet(CFG).eval()
    b, L = 6, 10
    ctx = torch.randint(0, 21, (2, 256))[torch.tensor([0, 0, 1, 1, 0, 1])]
    inp = {"features": torch.rand(b, L, 31), "lengths": torch.full((b,), L), "templates": torch.rand(b, L, 33),
           "context": ctx, "slots": torch.randint(0, 257, (b, L))}  # fmt: skip
    with torch.no_grad():
        together = net(**inp)["sincos"]
        alone = torch.cat([net(**{k: v[i : i + 1] for k, v in inp.items()})["sincos"] for i in range(b)])
    assert torch.allclose(together, alone, atol=1e-5)


def _fv_inputs(contexts: torch.Tensor, owner: list[int], length: int = 10) -> dict[str, torch.Tensor]:
    """Random FvNet inputs: windows of different lengths reading ``contexts[owner]``."""
    b = len(owner)
    return {"features": torch.rand(b, length, 31), "lengths": torch.randint(3, length + 1, (b,)),
            "templates": torch.rand(b, length, 33), "context": contexts[torch.tensor(owner)],
            "slots": torch.randint(0, 257, (b, length))}  # fmt: skip


@pytest.mark.parametrize("model", ["fvnet", "loopnet"])
def test_inference_layers_give_what_the_torch_modules_give(model):
    """Eval mode runs attention through model.attention (memory keys once per Fv); training mode runs the
    torch modules. Without dropout both must give the same outputs at every real position."""
    from loopfold.model.networks import build_network

    torch.manual_seed(1)
    net = build_network(replace(CFG, model=model, dropout=0.0))
    ctx = torch.randint(0, 20, (3, 256))
    ctx[:, 100:140] = GAP  # slots empty everywhere, and some empty in one Fv only
    ctx[1, 5:30] = GAP
    inp = _fv_inputs(ctx, [2, 0, 1, 1, 0, 2, 2])
    if model == "loopnet":
        inp = {"features": inp["features"], "lengths": inp["lengths"]}
    real = torch.arange(10)[None] < inp["lengths"][:, None]
    with torch.no_grad():
        fast, ref = net.eval()(**inp), net.train()(**inp)
    for key in ("sincos", "bin_logits"):
        assert (fast[key] - ref[key])[real].abs().max() < 1e-5, key
    assert not torch.allclose(fast["sincos"][real], torch.roll(ref["sincos"], 1, 0)[real], atol=1e-3)


def test_slots_empty_in_every_fv_of_a_batch_are_dropped_without_changing_outputs():
    torch.manual_seed(2)
    net = FvNet(replace(CFG, dropout=0.0)).eval()
    ctx = torch.randint(0, 20, (2, 256))
    ctx[0, 50:200] = GAP  # alone, most slots are dropped; beside the full Fv none are
    inp = _fv_inputs(ctx, [0, 1, 1])
    with torch.no_grad():
        beside = net(**inp)["sincos"][0]
        alone = net(**{k: v[:1] for k, v in inp.items()})["sincos"][0]
    n = int(inp["lengths"][0])
    assert torch.allclose(alone[:n], beside[:n], atol=1e-5)
