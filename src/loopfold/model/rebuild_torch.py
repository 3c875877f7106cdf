"""Differentiable NeRF in PyTorch, the twin of :func:`loopfold.structure.rebuild.rebuild_backbone`.

Uses ideal (Engh & Huber) geometry; torsions in radians, ``[B, L, 3]`` (phi, psi, omega).
"""

from __future__ import annotations

import math

import torch

from loopfold import constants as K


def _place(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, bond: float, angle, tor: torch.Tensor):
    """Atom D at ``bond`` from C, angle B-C-D ``angle`` (degrees: a number or ``[B]``), dihedral ``tor``."""
    bc = c - b
    bc = bc / bc.norm(dim=-1, keepdim=True)
    n = torch.cross(b - a, bc, dim=-1)
    n = n / n.norm(dim=-1, keepdim=True)
    m = torch.cross(n, bc, dim=-1)
    ang = torch.deg2rad(torch.as_tensor(angle, dtype=b.dtype))
    if ang.dim():
        ang = ang[..., None]
    t = tor[..., None]
    return c - bond * torch.cos(ang) * bc + bond * torch.sin(ang) * (torch.cos(t) * m + torch.sin(t) * n)


def rebuild_backbone_torch(torsions: torch.Tensor, bond_angles: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, L, 4, 3]`` N, CA, C, O from torsions ``[B, L, 3]`` (radians), canonical first residue.

    ``bond_angles`` ``[B, L, 3]`` (degrees) are each residue's N-CA-C (tau), CA-C-N (to the
    next residue) and C-N-CA (from the previous one) angles, as in
    :class:`loopfold.structure.geometry.InternalGeometry`; ideal when None.
    """
    bsz, length, _ = torsions.shape
    dt = torsions.dtype
    if bond_angles is None:
        ideal = torch.tensor([K.ANGLE_N_CA_C, K.ANGLE_CA_C_N, K.ANGLE_C_N_CA], dtype=dt)
        bond_angles = ideal.expand(bsz, length, 3)
    tau, ca_c_n, c_n_ca = bond_angles[..., 0], bond_angles[..., 1], bond_angles[..., 2]
    t0 = torch.deg2rad(tau[:, 0])
    zero = torch.zeros(bsz, dtype=dt)
    n0 = torch.zeros(bsz, 3, dtype=dt)
    ca0 = torch.tensor([K.BOND_N_CA, 0.0, 0.0], dtype=dt).expand(bsz, 3)
    c0 = torch.stack([K.BOND_N_CA - K.BOND_CA_C * torch.cos(t0), K.BOND_CA_C * torch.sin(t0), zero], -1)
    ns, cas, cs = [n0], [ca0], [c0]
    phi, psi, omega = torsions[..., 0], torsions[..., 1], torsions[..., 2]
    for i in range(1, length):
        n = _place(ns[-1], cas[-1], cs[-1], K.BOND_C_N, ca_c_n[:, i - 1], psi[:, i - 1])
        ca = _place(cas[-1], cs[-1], n, K.BOND_N_CA, c_n_ca[:, i], omega[:, i - 1])
        c = _place(cs[-1], n, ca, K.BOND_CA_C, tau[:, i], phi[:, i])
        ns.append(n)
        cas.append(ca)
        cs.append(c)
    n, ca, c = torch.stack(ns, 1), torch.stack(cas, 1), torch.stack(cs, 1)
    o = _place(n, ca, c, K.BOND_C_O, K.ANGLE_CA_C_O, psi + math.pi)
    return torch.stack([n, ca, c, o], dim=2)
