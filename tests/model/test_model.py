import numpy as np
import pandas as pd
import pytest
import torch

from loopfold.data.records import LoopRecord
from loopfold.errors import CheckpointError, InvalidSequence
from loopfold.model.checkpoint import load_model, save_model
from loopfold.model.config import TrainConfig
from loopfold.model.features import batch_from_frame, encode_window
from loopfold.model.losses import masked_mse, seed_leaky_targets, training_loss
from loopfold.model.networks import SeedLSTM, build_network
from loopfold.model.rebuild_torch import rebuild_backbone_torch
from loopfold.structure.rebuild import rebuild_backbone


def frame(n=6, length=9, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        L = length - i % 3
        seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), L))
        phi, psi, om = rng.uniform(-180, 180, (3, L))
        phi[0], psi[-1], om[-1] = np.nan, np.nan, np.nan
        rows.append(LoopRecord(f"t{i}", "t", None, "H", "H", "H3", "north", seq[2:-2], seq[:2], seq[-2:],
                               phi.tolist(), psi.tolist(), om.tolist()).to_row())  # fmt: skip
    df = pd.DataFrame(rows)
    df["coords"] = None
    return df


def test_torch_nerf_matches_numpy():
    tors = np.random.default_rng(0).uniform(-180, 180, (2, 8, 3))
    a = rebuild_backbone(tors)
    b = rebuild_backbone_torch(torch.tensor(np.radians(tors), dtype=torch.float64)).numpy()
    np.testing.assert_allclose(a, b, atol=1e-9)
    t = torch.tensor(np.radians(tors), requires_grad=True)
    rebuild_backbone_torch(t).sum().backward()
    assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_masking_padding_and_undefined_never_change_loss():
    batch = batch_from_frame(frame(), max_len=12)
    pred = torch.zeros_like(batch.target)
    base = masked_mse(pred, batch.target, batch.target_mask)
    pred2 = pred.clone()
    pred2[~batch.pad_mask] = 5.0  # padded positions
    pred2[:, 0, :2] = -7.0  # first phi: undefined
    rows = torch.arange(pred.shape[0])
    pred2[rows, batch.lengths - 1, 2:] = 9.0  # last psi: undefined
    assert masked_mse(pred2, batch.target, batch.target_mask) == pytest.approx(float(base))
    pred2[0, 3, 0] = 1.0  # a defined entry does change it
    assert masked_mse(pred2, batch.target, batch.target_mask) != pytest.approx(float(base))


def test_masked_mse_hand_computed():
    pred = torch.tensor([[[0.5, 0.0, 0.0, 1.0]]])
    target = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    assert float(masked_mse(pred, target, mask)) == pytest.approx((0.25 + 1.0) / 2)


def test_seed_leaky_mask_adds_two_constant_targets_per_loop():
    batch = batch_from_frame(frame(), max_len=12)
    target, mask = seed_leaky_targets(batch)
    assert float(mask.sum() - batch.target_mask.sum()) == 2 * len(batch.lengths)
    assert (target[:, 0, 1] == 1).all()
    rows = torch.arange(len(batch.lengths))
    assert (target[rows, batch.lengths - 1, 2] == 0).all()


def _zero_forward_direction(model: SeedLSTM) -> None:
    with torch.no_grad():
        for lstm in model.lstms:
            for name, p in lstm.named_parameters():
                if not name.endswith("_reverse"):
                    p.zero_()


@pytest.mark.parametrize("backward_at_last", [True, False])
def test_seed_backward_read_at_last_position_sees_one_residue(backward_at_last):
    torch.manual_seed(0)
    cfg = TrainConfig(model="seed-lstm", max_len=12, dropout=0.0, seed_backward_at_last=backward_at_last)
    model = SeedLSTM(cfg).eval()
    _zero_forward_direction(model)
    x = encode_window("ACDEFGHIK", 0, 0, "H3", 12)[None]
    y = x.copy()
    y[0, 0, :20] = 0
    y[0, 0, 5] = 1  # change residue 1
    lengths = torch.tensor([9])
    a = model(torch.from_numpy(x), lengths)["sincos"]
    b = model(torch.from_numpy(y), lengths)["sincos"]
    assert torch.allclose(a, b) == backward_at_last


def test_seed_bottleneck_switch():
    on = build_network(TrainConfig(model="seed-lstm", max_len=31))
    off = build_network(TrainConfig(model="seed-lstm", max_len=31, seed_bottleneck=False))
    assert on.head.out_features == 4 * 31 and off.head.out_features == 4
    batch = batch_from_frame(frame(), max_len=31)
    assert off(batch.features, batch.lengths)["sincos"].shape == (6, batch.features.shape[1], 4)


def test_loopnet_loss_and_padding_invariance():
    torch.manual_seed(0)
    cfg = TrainConfig(hidden=32, max_len=12, dropout=0.0, n_bins=8)
    model = build_network(cfg).eval()
    batch = batch_from_frame(frame(), 12)
    out = model(batch.features, batch.lengths)
    assert torch.isfinite(training_loss(out, batch))
    shorter = model(batch.features[:, :9], batch.lengths)  # less padding, same residues
    assert torch.allclose(
        out["sincos"][:, :9][batch.pad_mask[:, :9]], shorter["sincos"][batch.pad_mask[:, :9]], atol=1e-5
    )


def test_encode_rejects_bad_letters_and_length():
    with pytest.raises(InvalidSequence, match="residue 3 is 'X'"):
        encode_window("ACXD", 0, 0, "H3", 10)
    with pytest.raises(InvalidSequence, match="limit of 3"):
        encode_window("ACDE", 0, 0, "H3", 3)


def test_checkpoint_round_trip_and_corruption(tmp_path):
    cfg = TrainConfig(hidden=16, max_len=12, n_bins=4)
    model = build_network(cfg)
    save_model(tmp_path, model, cfg, {"definition": "north"})
    loaded, cfg2, info = load_model(tmp_path)
    assert cfg2 == cfg and info["definition"] == "north"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    (tmp_path / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="model.safetensors: missing or corrupt"):
        load_model(tmp_path)
    save_model(tmp_path, build_network(TrainConfig(hidden=8, max_len=12, n_bins=4)), cfg)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path)


def test_run_network_chunking_and_trimming_do_not_change_outputs():
    from loopfold.model.decode import run_network

    torch.manual_seed(0)
    model = build_network(TrainConfig(hidden=16, max_len=12, n_bins=4, dropout=0.0))
    batch = batch_from_frame(frame(n=7), 12)
    a = run_network(model, batch, chunk=2)
    b = run_network(model, batch, chunk=4096)
    pad = batch.pad_mask.numpy()  # outputs at real residues; padding is not a prediction
    for key in ("sincos", "bin_probs", "mode"):
        np.testing.assert_allclose(a[key][pad], b[key][pad], atol=1e-5)
    full = model(batch.features, batch.lengths)["sincos"].detach().numpy()
    np.testing.assert_allclose(a["sincos"][pad], full[pad], atol=1e-5)
