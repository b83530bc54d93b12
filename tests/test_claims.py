"""The paper's claims decided on hand-made runs: each rule holds where it should and fails where it should not."""
from __future__ import annotations

from orchestrator.claims import check_rows, markdown
from tests.test_report import rows_of

# (val F1, test F1, test ECE raw, test ECE after TS, OOD FT3 F1, OOD FT3 ECE, OOD no-FT F1); no-FT ECE is 12
TEACHER = {s: {1: (60, 50 + s, 9 + s, 4 + s, 70, 8, 60)} for s in (0, 1)}
STUDENT = {s: {1: (60, 50 + s, 9 + s, 4 + s, 70, 8, 60), 2: (62, 53 + s, 8 + s, 3 + s, 71, 9, 61)} for s in (0, 1)}
WORSE = {s: {1: (60, 50 + s, 9 + s, 4 + s, 70, 8, 60), 2: (59, 49 + s, 7 + s, 6 + s, 69, 20, 70)} for s in (0, 1)}


def claims_of(rows) -> dict[int, dict]:
    return {c["claim"]: c for c in check_rows(rows, "isear")}


def test_claims_hold_on_runs_built_to_hold_them():
    rows = (rows_of("ce", TEACHER, "raw") + rows_of("ce_ts", TEACHER, "ts") + rows_of("sd", STUDENT, "raw")
            + rows_of("csd", STUDENT, "ts") + rows_of("sim_mixup_csd", {s: {g: (v[0], v[1], v[2], v[3] - 1, *v[4:])
                                                                           for g, v in gens.items()}
                                                                       for s, gens in STUDENT.items()}, "ts"))
    c = claims_of(rows)
    assert [c[i]["held"] for i in (1, 2, 3, 4, 5)] == [True, True, True, True, True], markdown(list(c.values()))
    assert c[1]["per_seed"] == "2/2 seeds lower" and "9.50" in c[1]["ours"] and "9.12 -> 4.00" in c[1]["paper"]


def test_claims_fail_where_the_numbers_say_so():
    # students that do not beat their teacher; CSD no better than SD; FT that raises ECE by 8 points
    rows = (rows_of("ce", TEACHER, "raw") + rows_of("ce_ts", TEACHER, "raw") + rows_of("sd", STUDENT, "ts")
            + rows_of("csd", WORSE, "raw") + rows_of("sim_mixup_csd", WORSE, "raw"))
    c = claims_of(rows)
    assert not c[1]["held"]  # ce_ts read raw here: no lower than ce
    assert not c[2]["held"]  # csd at g1 (raw 9.5) vs sd at g2 after TS (3.5)
    assert not c[3]["held"] and not c[4]["held"]  # g* = 1 for csd and sim_mixup_csd
    assert c[5]["held"]  # every method at g* gains OOD F1 by fine-tuning, ECE 8 vs 12 without


def test_a_large_ood_ece_increase_fails_claim_5():
    hot = {s: {1: (60, 50, 9, 4, 70, 12 + 2.5, 60)} for s in (0, 1)}  # FT ECE 2.5 points above no-FT's 12
    c = claims_of(rows_of("ce", hot, "raw"))
    assert not c[5]["held"] and "ECE +2.50" in c[5]["ours"]
    fine = {s: {1: (60, 50, 9, 4, 70, 12 + 1.5, 60)} for s in (0, 1)}
    assert claims_of(rows_of("ce", fine, "raw"))[5]["held"]


def test_a_kd_method_without_a_student_decides_nothing():
    rows = rows_of("ce", TEACHER, "raw") + rows_of("sim_mixup_csd", TEACHER, "ts")  # its teacher only
    c = claims_of(rows)
    assert 3 not in c and 4 not in c
    assert "| 3 | Sim-MixUp + CSD" in markdown(list(c.values())) and "**undecided**" in markdown(list(c.values()))
