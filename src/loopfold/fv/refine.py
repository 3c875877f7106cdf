"""Optional refinement (``--refine``): side chains by PDBFixer, a short restrained minimisation by OpenMM.

PDBFixer adds the missing side-chain atoms and hydrogens; OpenMM minimises the
structure in the Amber14 force field (vacuum, 1 nm non-periodic cutoff; at most
500 L-BFGS iterations) with the backbone heavy atoms (N, CA, C, O) held by
harmonic restraints of 10 kcal/mol/Å² to where loopfold put them (the strength
AlphaFold2's relaxation uses, there on all heavy atoms), every peptide bond held planar
(trans, or cis where the model has it cis) and every residue's hand held by torsion restraints
(0.3 made D-residues and twisted bonds; :func:`refine_checked` checks the result and undoes a
refinement that makes one), so clashes go and the
backbone stays (it moved 0.25-0.39 Å RMS on the 13 benchmark models refined by
``bench/fv.py --refine 3 --refine-clashing``, and every one ended with no
heavy-atom pair under 2.5 Å). Hydrogens are removed from the written file; residue numbering, chain
names and the predicted-error B-factors are kept. Ligands and waters are left
out of the calculation (no force-field template) and, for ``--structure``,
put back as they were (:func:`merge_refined`). On 2 cores a refinement took
56-68 s per Fv (3 docking models, mean of three runs of ``bench/model_geometry.py --refine 3``;
0.3 took 42-66 s before the torsion restraints), most of it PDBFixer's side-chain building. Both packages are optional
(``pip install 'loopfold[refine]'``) and nothing here is hand-written physics.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import gemmi
import numpy as np

from loopfold.constants import REFINED_REMARK
from loopfold.errors import LoopfoldError, RefinementError
from loopfold.io.model_check import check_text
from loopfold.io.model_file import remark_250
from loopfold.structure.geometry import dihedral
from loopfold.structure.validate import GeometryCheck

RESTRAINT = 10.0 * 4.184 * 100.0  # 10 kcal/mol/Å² in kJ/mol/nm²
FIXED = 100.0  # residues not being remodelled: every heavy atom held this many times harder
OMEGA_K = 2.0 * 100.0 * 4.184  # kJ/mol: 100 kcal/mol x (1 - cos) per peptide bond, 13 kcal/mol at 30°
CHIRAL_K = 2.0 * 50.0 * 4.184  # kJ/mol: each residue's hand
BACKBONE = ("N", "CA", "C", "O")


def require_refinement() -> None:
    """Raise LoopfoldError (one line, the install command) when OpenMM or PDBFixer is missing."""
    _modules()


def _modules():  # noqa: ANN202 - openmm's own types
    try:
        import openmm
        from openmm import app, unit
        from pdbfixer import PDBFixer
    except ImportError:
        raise LoopfoldError("--refine needs OpenMM and PDBFixer: pip install 'loopfold[refine]'") from None
    return openmm, app, unit, PDBFixer


@dataclass(frozen=True)
class Refinement:
    """A refinement's outcome: the text to write, whether it is the refined one, the geometry check of
    that text and, when the refinement was undone, why."""

    text: str
    refined: bool
    geometry: GeometryCheck
    reason: str | None = None


def refine_checked(pdb_text: str, name: str = "model", movable: set[tuple[str, str]] | None = None,
                   max_iterations: int = 500, threads: int | None = None) -> Refinement:  # fmt: skip
    """:func:`refine_pdb`, checked: the model's geometry before and after (:mod:`loopfold.structure.validate`);
    a refinement that makes a D-residue, a cis bond before a non-proline or a twisted bond that the
    model did not have is undone (the unrefined text is returned, with a REMARK saying why).

    Raises:
        LoopfoldError: as :func:`refine_pdb`.
    """
    before = check_text(pdb_text)
    text = refine_pdb(pdb_text, name, max_iterations, threads, movable)
    after = check_text(text)
    new = [(what, sorted(set(b) - set(a))) for what, b, a in (
        ("D-residue", after.d_residues, before.d_residues), ("cis bond before a non-proline", after.cis_nonpro,
         before.cis_nonpro), ("twisted bond", after.twisted, before.twisted))]  # fmt: skip
    made = [f"{what} {', '.join(at)}" for what, at in new if at]
    if not made:
        return Refinement(text, True, after)
    reason = f"refinement undone: it made {'; '.join(made)}"
    return Refinement(remark_250([reason]) + pdb_text, False, before, reason)


def refine_pdb(pdb_text: str, name: str = "model", max_iterations: int = 500, threads: int | None = None,
               movable: set[tuple[str, str]] | None = None) -> str:  # fmt: skip
    """Refined PDB text (heavy atoms, side chains added) of a backbone model in ``pdb_text``.

    B-factors (predicted error) and REMARK lines are carried over per residue. ``movable`` (chain,
    residue number with insertion code): only those residues are minimised with backbone restraints;
    every heavy atom of the others is held ``FIXED`` times harder (``--structure``: the crystal's
    atoms stay where they are).

    Raises:
        LoopfoldError: OpenMM or PDBFixer missing, or the model cannot be parameterised.
    """
    import os

    openmm, app, unit, fixer_cls = _modules()
    platform = openmm.Platform.getPlatformByName("CPU")
    threads = threads or os.cpu_count() or 1
    try:
        fixer = fixer_cls(pdbfile=io.StringIO(_protein_only(pdb_text)), platform=platform)
    except Exception as exc:  # noqa: BLE001 - PDBFixer raises plain Exceptions on odd input
        raise RefinementError(f"{name}: cannot refine ({exc})") from None
    fixer.findMissingResidues()
    fixer.missingResidues = {}  # chain ends stay where the model ends
    try:
        fixer.findMissingAtoms()
        fixer.addMissingAtoms(seed=0)
        fixer.addMissingHydrogens(7.0)
    except Exception as exc:  # noqa: BLE001 - PDBFixer raises plain Exceptions
        raise RefinementError(f"{name}: cannot add side chains ({exc})") from None
    ff = app.ForceField("amber14-all.xml")
    try:
        system = ff.createSystem(fixer.topology, nonbondedMethod=app.CutoffNonPeriodic,
                                 nonbondedCutoff=1.0 * unit.nanometer, constraints=app.HBonds)
    except Exception as exc:  # noqa: BLE001 - OpenMM raises plain Exceptions for a residue it has no template for
        raise RefinementError(f"{name}: cannot refine ({exc})") from None
    hold = openmm.CustomExternalForce("0.5*k*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    for p in ("k", "x0", "y0", "z0"):
        hold.addPerParticleParameter(p)
    positions = fixer.positions
    for atom in fixer.topology.atoms():
        res = atom.residue
        kept = movable is not None and (res.chain.id, f"{res.id}{res.insertionCode.strip()}") not in movable
        if atom.name in BACKBONE or (kept and atom.element is not None and atom.element.symbol != "H"):
            xyz = positions[atom.index].value_in_unit(unit.nanometer)
            hold.addParticle(atom.index, [RESTRAINT * (FIXED if kept else 1.0), *xyz])
    system.addForce(hold)
    system.addForce(_shape_restraints(openmm, fixer.topology, positions, unit))
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    sim = app.Simulation(fixer.topology, system, integrator, platform, {"Threads": str(threads)})
    sim.context.setPositions(positions)
    try:
        sim.minimizeEnergy(maxIterations=max_iterations)
    except Exception as exc:  # noqa: BLE001 - OpenMM's minimiser raises plain Exceptions (NaN energies)
        raise RefinementError(f"{name}: refinement failed ({exc})") from None
    state = sim.context.getState(getPositions=True)
    buf = io.StringIO()
    app.PDBFile.writeFile(fixer.topology, state.getPositions(), buf, keepIds=True)
    return _with_b_factors(buf.getvalue(), pdb_text)


def _shape_restraints(openmm, topology, positions, unit):  # noqa: ANN001, ANN202 - openmm's own types
    """Torsion restraints that keep what the minimisation must not change: every peptide bond's omega
    at 180° (0° where the model has it cis), and each residue's hand (the N-C-CA-CB improper at its
    starting value, so no CA inverts)."""
    force = openmm.CustomTorsionForce("0.5*k*(1-cos(theta-theta0))")
    force.addPerTorsionParameter("k")
    force.addPerTorsionParameter("theta0")
    xyz = np.array(positions.value_in_unit(unit.nanometer))
    for chain in topology.chains():
        residues = list(chain.residues())
        atoms = [{a.name: a.index for a in r.atoms()} for r in residues]
        for i, at in enumerate(atoms):
            if all(k in at for k in ("N", "C", "CA", "CB")):
                q = [at["N"], at["C"], at["CA"], at["CB"]]
                force.addTorsion(*q, [CHIRAL_K, _dihedral(xyz[q])])
            if i + 1 < len(atoms) and all(k in at for k in ("CA", "C")) and all(k in atoms[i + 1] for k in ("N", "CA")):
                q = [at["CA"], at["C"], atoms[i + 1]["N"], atoms[i + 1]["CA"]]
                if np.linalg.norm(xyz[q[1]] - xyz[q[2]]) < 0.2:  # bonded (nm)
                    force.addTorsion(*q, [OMEGA_K, 0.0 if abs(_dihedral(xyz[q])) < np.pi / 2 else np.pi])
    return force


def _dihedral(p: np.ndarray) -> float:
    """Dihedral angle (radians) of four points ``[4, 3]``."""
    return float(np.radians(dihedral(*p)))


def _protein_only(pdb_text: str) -> str:
    """The amino-acid residues of the first model (ligands and waters have no force-field template)."""
    st = gemmi.read_pdb_string(pdb_text)
    st.remove_ligands_and_waters()
    st.remove_hydrogens()
    while len(st) > 1:
        del st[1]
    st.setup_entities()
    opts = gemmi.PdbWriteOptions()
    opts.cryst1_record = False
    return st.make_pdb_string(opts)


def merge_refined(original: str, refined: str, movable: set[tuple[str, str]] | None = None) -> str:
    """``original`` (PDB text) with the atoms of residues in ``refined`` replaced by the refined ones:
    every such residue, or with ``movable`` (chain, residue number with insertion code) those and the
    residues the refinement completed (heavy atoms the original lacked). Every other residue, ligands
    and waters keep their atoms as read (B-factors, occupancies, alternative conformations)."""
    new = gemmi.read_pdb_string(refined)
    by = {(ch.name, r.seqid.num, r.seqid.icode): r for ch in new[0] for r in ch}
    st = gemmi.read_pdb_string(original)
    for ch in st[0]:
        for r in ch:
            src = by.get((ch.name, r.seqid.num, r.seqid.icode))
            if src is None:
                continue
            heavy = {a.name for a in r if not a.is_hydrogen()}
            if movable is not None and (ch.name, f"{r.seqid.num}{r.seqid.icode.strip()}") not in movable and \
                    {a.name for a in src} <= heavy:  # fmt: skip
                continue
            while len(r):
                del r[0]
            for atom in src:
                r.add_atom(atom)
    st.setup_entities()
    opts = gemmi.PdbWriteOptions()
    opts.cryst1_record = st.cell.is_crystal()
    kept = set(original.splitlines())  # the original's REMARKs are written with it: the new ones only
    head = "".join(line + "\n" for line in refined.splitlines() if line.startswith("REMARK") and line not in kept)
    return head + st.make_pdb_string(opts)


def _with_b_factors(refined: str, original: str) -> str:
    """The refined text without hydrogens, each residue's B-factor and the REMARKs from the original."""
    src = gemmi.read_pdb_string(original)
    b = {(ch.name, r.seqid.num, r.seqid.icode): r[0].b_iso for ch in src[0] for r in ch if len(r)}
    st = gemmi.read_pdb_string(refined)
    st.remove_hydrogens()
    for ch in st[0]:
        for r in ch:
            for atom in r:
                atom.b_iso = float(b.get((ch.name, r.seqid.num, r.seqid.icode), 0.0))
    st.setup_entities()
    opts = gemmi.PdbWriteOptions()
    opts.minimal_file = True
    opts.cryst1_record = False
    head = "".join(line + "\n" for line in original.splitlines() if line.startswith("REMARK"))
    return head + remark_250([REFINED_REMARK]) + st.make_pdb_string(opts)
