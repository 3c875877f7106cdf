import pytest

from loopfold.errors import NumberingError
from loopfold.numbering.anarci import number_sequence
from loopfold.numbering.cdr import cdr_bounds, locate_cdr
from tests.conftest import IGG1_CH1, KAPPA_CL, LYSOZYME, TRASTUZUMAB_VH, TRASTUZUMAB_VL


def loop_of(seq, cdr, definition):
    dom = number_sequence(seq)[0]
    sl = locate_cdr(dom.indices, [p for p, _ in dom.positions], cdr, definition, "imgt")
    return seq[sl.start : sl.stop]


@pytest.mark.parametrize(
    ("cdr", "definition", "expected"),
    [
        ("H3", "chothia", "WGGDGFYAMDY"),
        ("H3", "north", "SRWGGDGFYAMDY"),
        ("H3", "imgt", "SRWGGDGFYAMDY"),
        ("H1", "chothia", "GFNIKDT"),
        ("H1", "north", "AASGFNIKDTYIH"),
        ("H1", "imgt", "GFNIKDTY"),
        ("H2", "chothia", "YPTNGY"),
        ("H2", "north", "RIYPTNGYTR"),
    ],
)
def test_heavy_cdrs_under_each_definition(cdr, definition, expected):
    assert loop_of(TRASTUZUMAB_VH, cdr, definition) == expected


@pytest.mark.parametrize(
    ("cdr", "definition", "expected"),
    [
        ("L1", "chothia", "RASQDVNTAVA"),
        ("L2", "chothia", "SASFLYS"),
        ("L2", "north", "YSASFLYS"),
        ("L3", "chothia", "QQHYTTPPT"),
        ("L3", "imgt", "QQHYTTPPT"),
        ("L1", "imgt", "QDVNTA"),
    ],
)
def test_light_cdrs(cdr, definition, expected):
    assert loop_of(TRASTUZUMAB_VL, cdr, definition) == expected


def test_fab_chain_and_scfv():
    dom = number_sequence(TRASTUZUMAB_VH + IGG1_CH1)
    assert len(dom) == 1 and dom[0].chain_type == "H"
    assert loop_of(TRASTUZUMAB_VL + KAPPA_CL, "L3", "north") == "QQHYTTPPT"
    scfv = TRASTUZUMAB_VH + "GGGGSGGGGSGGGGS" + TRASTUZUMAB_VL
    doms = number_sequence(scfv)
    assert [d.chain_type for d in doms] == ["H", "L"]
    assert doms[1].indices[0] > len(TRASTUZUMAB_VH)


def test_non_antibody_is_refused():
    with pytest.raises(NumberingError, match="lysozyme: no antibody"):
        number_sequence(LYSOZYME, name="lysozyme")


def test_bounds_and_unknown_names():
    assert cdr_bounds("H3", "chothia", "chothia") == (95, 102)
    with pytest.raises(ValueError, match="unknown CDR"):
        cdr_bounds("H4", "north", "imgt")
    assert cdr_bounds("H3", "imgt", "chothia") == (93, 102)
    with pytest.raises(ValueError, match="not available"):
        cdr_bounds("H3", "imgt", "kabat")


def test_truncated_chain_has_no_loop():
    # numbering that stops inside H3: no C-terminal anchor
    assert locate_cdr([0, 1, 2], [104, 105, 106], "H3", "north", "imgt") is None


def test_chains_seen_before_in_a_run_are_not_numbered_again(monkeypatch):
    from loopfold.numbering import cache

    asked: list[list[str]] = []
    real = cache.number_sequences

    def counting(items, **kw):
        asked.append([name for name, _ in items])
        return real(items, **kw)

    monkeypatch.setattr(cache, "number_sequences", counting)
    numberer = cache.ChainNumberer(size=2)
    bad = "EVQLVESGGGLVQPGGSLRLSCAAS" * 2  # no variable domain
    first = numberer.number([("a heavy", TRASTUZUMAB_VH), ("a light", TRASTUZUMAB_VL), ("b heavy", TRASTUZUMAB_VH),
                             ("c heavy", bad), ("d heavy", bad)], workers=1)  # fmt: skip
    assert asked == [["a heavy", "a light", "c heavy"]]  # each distinct sequence once
    assert first[2] == first[0] and first[0][0].chain_type == "H"
    assert str(first[3]).startswith("c heavy:") and str(first[4]).startswith("d heavy:")  # each record named
    again = numberer.number([("e light", TRASTUZUMAB_VL), ("f heavy", bad)], workers=1)
    assert asked[1] == ["f heavy"] and again[0] == first[1]  # failures are not kept, successes are
    assert str(again[1]).startswith("f heavy:")
    numberer.number([("g", TRASTUZUMAB_VH[:-3])], workers=1)  # a third success: the least recent goes
    assert TRASTUZUMAB_VH not in numberer.cache and len(numberer.cache) == 2
