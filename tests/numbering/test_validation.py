"""Numbering validation: known misnumbered chains, and generated chains with CDRs of every length."""

import numpy as np
import pytest

from loopfold.errors import NumberingError
from loopfold.numbering import anarci
from loopfold.numbering.anarci import number_sequence, number_sequences
from loopfold.numbering.cdr import locate_cdr
from loopfold.numbering.validate import check_domain
from tests.conftest import TRASTUZUMAB_VH, TRASTUZUMAB_VL

#: The trastuzumab heavy-chain variant that anarcism 1.0.1 numbers two residues off (issue 7).
TRAS_VARIANT_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCARTIGDQLDY"
    "WGQGTLVTVSS"
)
#: Chains of the Rosetta antibody database (PDB 1a4k L, 1bfo H) that anarcism misnumbers.
PDB_1A4K_L = "ELVMTQTPLSLPVSLGDQASISCRSSQSLLHSNGNTYLHWYLQKPGQSPKLLIYKVSNRFSGVPDRFSGSGSGTDFTLKISRVEAEDLGVYFCSQVTHVPPTFGGGTKLEIKRT"  # noqa: E501
PDB_1BFO_H = "EVKLLESGGGLVQPGGSMRLSCAGSGFTFTDFYMNWIRQPAGKAPEWLGFIRDKAKGYTTEYNPSVKGRFTISRDNTQNMLYLQMNTLRAEDTATYYCAREGHTAAPFDYWGQGVMVTVS"  # noqa: E501


def cut(seq, doms, cdr, definition="north"):
    dom = next(d for d in doms if d.chain_type == cdr[0])
    sl = locate_cdr(dom.indices, [p for p, _ in dom.positions], cdr, definition, "imgt")
    return seq[sl.start - 3 : sl.start], seq[sl.start : sl.stop]


@pytest.mark.parametrize(
    ("seq", "cdr", "stem", "loop"),
    [
        (TRAS_VARIANT_VH, "H1", "LSC", "AASGFNIKDTYIH"),
        (TRAS_VARIANT_VH, "H3", "YYC", "ARTIGDQLDY"),
        (PDB_1A4K_L, "L1", "ISC", "RSSQSLLHSNGNTYLH"),
        (PDB_1BFO_H, "H3", "YYC", "AREGHTAAPFDY"),
    ],
)
def test_misnumbered_chains_are_caught_and_renumbered(seq, cdr, stem, loop, monkeypatch):
    raw = number_sequence(seq, engine="anarcism")
    problem = check_domain(seq, raw[0].indices, raw[0].positions)
    assert problem is not None and "shifted" in problem  # anarcism's numbering is caught
    doms = number_sequence(seq)  # first: anarcism without the misaligning species' profiles
    assert doms[0].numberer == "anarcism" and raw[0].species and doms[0].species != raw[0].species
    assert cut(seq, doms, cdr) == (stem, loop)
    # no other species to try: the second opinion, anarcii, numbers it
    monkeypatch.setattr(anarci.anarcism, "species", lambda: [raw[0].species])
    doms = number_sequence(seq)
    assert doms[0].numberer == "anarcii"
    assert cut(seq, doms, cdr) == (stem, loop)


def test_good_chains_keep_the_first_numbering():
    for seq in (TRASTUZUMAB_VH, TRASTUZUMAB_VL):
        assert number_sequence(seq)[0].numberer == "anarcism"


def test_chain_failing_both_numberings_is_refused():
    # both cysteines and the conserved Trp41 replaced: no numbering can pass validation
    vh = TRASTUZUMAB_VH.replace("LSCAAS", "LSAAAS").replace("WVRQ", "AVRQ").replace("YYCSR", "YYASR")
    with pytest.raises(NumberingError, match=r"mutant heavy: numbering failed validation .*chain refused"):
        number_sequence(vh, name="mutant heavy")
    res = number_sequences([("ok", TRASTUZUMAB_VH), ("bad", vh)])
    assert not isinstance(res[0], NumberingError) and isinstance(res[1], NumberingError)


def test_one_unusual_conserved_residue_is_tolerated_two_are_not():
    seq = "AACAAWAACAAWGQGAA"
    pos = tuple((p, "") for p in (21, 22, 23, 39, 40, 41, 102, 103, 104, 105, 117, 118, 119, 120, 121, 122, 123))
    idx = tuple(range(len(seq)))
    assert check_domain(seq, idx, pos) is None
    assert check_domain("AACAALAACAAWGQGAA", idx, pos) is None  # L41: one unusual residue
    assert "unexpected residues" in check_domain("AACAALAAFAAWGQGAA", idx, pos)  # L41 and F104
    assert check_domain("AACAAWAACAARGQGAA", idx, pos) is None  # R118 inside an intact G-x-G motif
    assert check_domain("AACAAWAACAARAQGAA", idx, pos) is None  # R118 without the motif: the one tolerated
    assert check_domain("ACAAAWAACAAWGQGAA", idx, pos) == "conserved C23 found at position 22 (numbering shifted)"
    # the Cys numbered 24 with 23 left empty: a gap at a framework position is a slip
    gap = tuple((24, "") if p == (23, "") else p for p in pos)
    assert check_domain(seq, idx, gap) == "conserved position 23 left empty inside the domain (numbering shifted)"
    # CDR3 residues the numbering skipped (sequence index jumps between 104 and 118)
    skipped = tuple(range(9)) + tuple(i + 2 for i in range(9, len(seq)))
    assert "skipped" in check_domain(seq + "AA", skipped, pos)


# IMGT CDRs of trastuzumab and the frameworks around them
VH_PARTS = TRASTUZUMAB_VH.partition("GFNIKDTY")
VH_FR1, VH_REST = VH_PARTS[0], VH_PARTS[2]
VH_FR2, _, VH_REST = VH_REST.partition("IYPTNGYT")
VH_FR3, _, VH_FR4 = VH_REST.partition("SRWGGDGFYAMDY")
VL_FR1, _, VL_REST = TRASTUZUMAB_VL.partition("QDVNTA")
VL_FR2, _, VL_REST = VL_REST.partition("SAS")
VL_FR3, _, VL_FR4 = VL_REST.partition("QQHYTTPPT")
LETTERS = list("ADEGHKLNPQRSTVY")


def generated_chains():
    """Germline-like chains: trastuzumab frameworks around random IMGT CDRs of every length."""
    rng = np.random.default_rng(7)

    def r(n):
        return "".join(rng.choice(LETTERS, n))

    out = []
    for k, h3 in enumerate(range(3, 27)):
        h1, h2 = r(5 + k % 8), r(6 + k % 5)
        cdr3 = r(h3)
        out.append(("H", VH_FR1 + h1 + VH_FR2 + h2 + VH_FR3 + cdr3 + VH_FR4, {"H1": h1, "H2": h2, "H3": cdr3}))
    for k, l3 in enumerate(range(5, 14)):
        l1, cdr3 = r(6 + k % 7), r(l3)
        out.append(("L", VL_FR1 + l1 + VL_FR2 + "SAS" + VL_FR3 + cdr3 + VL_FR4, {"L1": l1, "L3": cdr3}))
    return out


@pytest.mark.parametrize("engine", ["validated", "anarcii"])
def test_generated_chains_with_cdrs_of_every_length(engine):
    chains = generated_chains()
    res = number_sequences([(f"g{i}", s) for i, (_, s, _) in enumerate(chains)], engine=engine)
    for (ctype, seq, cdrs), doms in zip(chains, res, strict=True):
        assert not isinstance(doms, NumberingError), doms
        dom = doms[0]
        assert dom.chain_type == ctype and check_domain(seq, dom.indices, dom.positions) is None
        at = {p: seq[i] for i, (p, ic) in zip(dom.indices, dom.positions, strict=True) if not ic}
        assert (at[23], at[41], at[104], at[118]) == ("C", "W", "C", "W" if ctype == "H" else "F")
        for cdr, loop in cdrs.items():
            assert cut(seq, doms, cdr, "imgt")[1] == loop, (cdr, len(loop))
        cdr3 = ctype + "3"  # North CDR3 = IMGT CDR3 (105-117); its stem is the conserved Cys side
        assert cut(seq, doms, cdr3, "north") == (seq[seq.index(cdrs[cdr3]) - 3 : seq.index(cdrs[cdr3])], cdrs[cdr3])


def test_species_restricts_the_profiles_and_a_failed_retry_goes_to_anarcii(monkeypatch):
    mouse = number_sequences([("t", TRASTUZUMAB_VH)], species=["mouse"], engine="anarcism")[0]
    assert mouse[0].species == "mouse"
    assert number_sequences([("t", TRASTUZUMAB_VH)], engine="anarcism")[0][0].species == "human"
    # the retry without the misaligning species gives the same shifted numbering: anarcii must take over
    real = anarci.anarcism.number_sequences
    first = real([("x", PDB_1A4K_L)], allowed_chains=["H", "K", "L"])

    def stuck(items, **kw):
        return first * len(items) if kw.get("allowed_species") else real(items, **kw)

    monkeypatch.setattr(anarci.anarcism, "number_sequences", stuck)
    doms = number_sequence(PDB_1A4K_L)
    assert doms[0].numberer == "anarcii" and cut(PDB_1A4K_L, doms, "L1") == ("ISC", "RSSQSLLHSNGNTYLH")
