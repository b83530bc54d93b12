"""orchestrator.paper_values is self-consistent: each main-table KD cell is the Table 11/12 column that
PAPER_GENERATION names, except the cells PAPER_CONTRADICTIONS footnotes (pure Python, no data)."""
from __future__ import annotations

import pytest

from orchestrator.paper_values import (
    CONTRADICTED_CELLS,
    GENERATION_FIELDS,
    ID_PER_GENERATION,
    ID_STD,
    ID_TABLE,
    OOD_PER_GENERATION,
    OOD_STD,
    OOD_TABLE,
    PAPER_CONTRADICTIONS,
    PAPER_GENERATION,
)

DATASETS = ("goemotions", "empathetic_dialogues", "isear")
KD_METHODS = ("sd", "csd", "rand_mixup_csd", "ea_mixup_csd", "sim_mixup_csd")
SETTINGS = {
    "id": (ID_TABLE, ID_STD, ID_PER_GENERATION),
    "ood": (OOD_TABLE, OOD_STD, OOD_PER_GENERATION),
}
CELLS = [(s, m, ds) for s in SETTINGS for m in KD_METHODS for ds in DATASETS]


def main_cell(setting: str, method: str, dataset: str) -> tuple[float, float, float, float]:
    """(f1_mean, f1_std, ece_mean, ece_std) of a main-table cell, in the order of Tables 11/12."""
    table, std, _ = SETTINGS[setting]
    (f1, _, ece), (f1_sd, _, ece_sd) = table[method][dataset], std[method][dataset]
    return (f1, f1_sd, ece, ece_sd)


def differing_fields(a, b) -> set[str]:
    return {name for name, x, y in zip(GENERATION_FIELDS, a, b) if x != y}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_structure(setting):
    table, std, per_gen = SETTINGS[setting]
    assert set(std) == set(table)
    for method in table:
        assert set(std[method]) == set(table[method]) == set(DATASETS)
        for ds in DATASETS:
            assert len(std[method][ds]) == 3 and all(0 <= x < 5 for x in std[method][ds])
    assert set(per_gen) == set(KD_METHODS) and set(PAPER_GENERATION[setting]) == set(KD_METHODS)
    for method in KD_METHODS:
        assert set(per_gen[method]) == set(DATASETS) == set(PAPER_GENERATION[setting][method])
        for ds in DATASETS:
            gens = per_gen[method][ds]
            assert len(gens) == 4 and all(len(g) == 4 for g in gens)
            for f1, f1_sd, ece, ece_sd in gens:
                assert 30 < f1 < 90 and 1 < ece < 20 and 0 < f1_sd < 5 and 0 < ece_sd < 5
            assert PAPER_GENERATION[setting][method][ds] in (1, 2, 3, 4)


@pytest.mark.parametrize("cell", CELLS, ids=["/".join(c) for c in CELLS])
def test_main_table_cell_is_its_generation(cell):
    setting, method, ds = cell
    gen, gens = PAPER_GENERATION[setting][method][ds], SETTINGS[setting][2][method][ds]
    got = differing_fields(main_cell(*cell), gens[gen - 1])
    assert got == ({CONTRADICTED_CELLS[cell]} if cell in CONTRADICTED_CELLS else set())
    # the named generation is the only one that close: no other column shares the F1 or the ECE cell
    for other in (g for i, g in enumerate(gens, 1) if i != gen):
        assert other[:2] != main_cell(*cell)[:2] and other[2:] != main_cell(*cell)[2:]


@pytest.mark.parametrize("cell", list(CONTRADICTED_CELLS), ids=["/".join(c) for c in CONTRADICTED_CELLS])
def test_contradiction_matches_no_generation_and_is_footnoted(cell):
    setting, method, ds = cell
    main = main_cell(*cell)
    gens = SETTINGS[setting][2][method][ds]
    assert all(differing_fields(main, g) for g in gens)
    notes = [n for n in PAPER_CONTRADICTIONS if method in n and ds in n and n.startswith(setting.upper())]
    assert len(notes) == 1
    i = GENERATION_FIELDS.index(CONTRADICTED_CELLS[cell])
    fmt = "{:.2f}" if i % 2 == 0 else "{:.1f}"
    gen = PAPER_GENERATION[setting][method][ds]
    for value in (main[i], gens[gen - 1][i]):
        assert fmt.format(value) in notes[0]


def test_one_footnote_per_contradiction():
    assert len(PAPER_CONTRADICTIONS) == len(CONTRADICTED_CELLS)


def test_id_and_ood_cells_come_from_the_same_generation():
    # if this ever fails, the mismatch needs a footnote in PAPER_CONTRADICTIONS
    assert PAPER_GENERATION["id"] == PAPER_GENERATION["ood"]


@pytest.mark.parametrize("method", ["sd", "csd"])
@pytest.mark.parametrize("ds", DATASETS)
def test_generation_one_is_the_teacher(method, ds):
    f1, f1_sd, ece, ece_sd = ID_PER_GENERATION[method][ds][0]
    assert (f1, f1_sd) == (ID_TABLE["ce"][ds][0], ID_STD["ce"][ds][0])
    teacher = "ce" if method == "sd" else "ce_ts"
    assert (ece, ece_sd) == (ID_TABLE[teacher][ds][2], ID_STD[teacher][ds][2])
    assert OOD_PER_GENERATION[method][ds][0] == main_cell("ood", "ce", ds)


@pytest.mark.parametrize("method,teacher", [("rand_mixup_csd", "rand_m_mixup"), ("ea_mixup_csd", "ea_m_mixup"),
                                            ("sim_mixup_csd", "sim_m_mixup")])
@pytest.mark.parametrize("ds", DATASETS)
def test_mixup_generation_one_is_the_mixup_teacher(method, teacher, ds):
    assert ID_PER_GENERATION[method][ds][0][:2] == main_cell("id", teacher, ds)[:2]
    assert OOD_PER_GENERATION[method][ds][0] == main_cell("ood", teacher, ds)
