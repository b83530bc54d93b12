"""The paper's own numbers, printed beside ours so a reader sees at once how close a run came.

All numbers are percent, transcribed from the paper's Tables 1-4, 8, 9, 11 and 12 (the paper: CITATION.cff).

`ID_TABLE` / `ID_STD`: means / stds over 5 seeds from Tables 1, 3 and 8 (ID test; F1 macro, F1 weighted,
ECE), the Electra+LCL baseline of Table 1 included (`electra_lcl`; the paper gives it no OOD row). `OOD_TABLE` / `OOD_STD`: Tables 2, 4 and 9 (OOD after 3% fine-tuning, keyed by the ID dataset the model
was trained on: goemotions -> DailyDialog, empathetic_dialogues -> SSEC, isear -> Emotion-Stimulus;
`ce_no_ft` is "RoBERTa (w/o finetuning)"). "+ TS" rows share the F1 mean and std of their base row ("same as
above"). Rows printed in several of these tables agree everywhere. Malformed cells read as: Table 1 CSD /
Empathetic Dialogues ECE "1.910.4" = 1.91 std 0.4 (as in Tables 3 and 8); Table 2 w/o-finetuning /
Emotion-Stimulus ECE "8.200.9" = 8.20 std 0.9; Table 2 w/o-finetuning / SSEC "49.06{0.5}" = 49.06 std 0.5.

`ID_PER_GENERATION` / `OOD_PER_GENERATION`: Tables 11 / 12 (appendix A.6), macro F1 and ECE of each
self-distillation generation 1..4 (generation 1 first) as `(f1_mean, f1_std, ece_mean, ece_std)`. Generation 1 is
the teacher: in ID its F1 is that of RoBERTa (`ce`) or of the matching M-MixUp row, its ECE that of `ce` for SD
and of the "+ TS" row for CSD and Rand-MixUp+CSD (EA/Sim's appear only here); in OOD it is the `ce` / M-MixUp row
of Tables 2 and 4 outright (CSD included).

The main tables report each KD method at its "best generation"; `PAPER_GENERATION` names, per setting ("id",
"ood"), the Table 11/12 column that the main-table cell equals (macro F1 and ECE, mean and std alike). ID and OOD
cells of the same method/dataset always come from the same generation. Two cells match no column exactly
(`CONTRADICTED_CELLS`, footnoted in `PAPER_CONTRADICTIONS`); their `PAPER_GENERATION` is the column that matches
in every other field.
"""
from __future__ import annotations

Generation = tuple[float, float, float, float]  # (f1_mean, f1_std, ece_mean, ece_std)
GENERATION_FIELDS = ("f1_mean", "f1_std", "ece_mean", "ece_std")

ID_TABLE: dict[str, dict[str, tuple[float, float, float]]] = {
    "ce": {"goemotions": (72.71, 82.20, 5.65), "empathetic_dialogues": (77.56, 79.86, 5.52), "isear": (75.60, 75.62, 9.12)},
    "ce_ts": {"goemotions": (72.71, 82.20, 1.70), "empathetic_dialogues": (77.56, 79.86, 1.96), "isear": (75.60, 75.62, 4.00)},
    "rand_m_mixup": {"goemotions": (71.46, 81.59, 5.52), "empathetic_dialogues": (77.10, 79.44, 3.94), "isear": (74.43, 74.46, 7.75)},
    "rand_m_mixup_ts": {"goemotions": (71.46, 81.59, 3.16), "empathetic_dialogues": (77.10, 79.44, 2.60), "isear": (74.43, 74.46, 3.74)},
    "ea66_m_mixup": {"goemotions": (68.95, 80.52, 4.89), "empathetic_dialogues": (75.33, 77.86, 4.15), "isear": (72.10, 72.12, 6.79)},
    "ea66_m_mixup_ts": {"goemotions": (68.95, 80.52, 4.60), "empathetic_dialogues": (75.33, 77.86, 2.56), "isear": (72.10, 72.12, 3.13)},
    "1g_sd_ea66": {"goemotions": (71.28, 81.70, 5.08), "empathetic_dialogues": (77.09, 79.48, 4.54), "isear": (75.96, 75.97, 6.64)},
    "1g_csd_ea66": {"goemotions": (71.65, 81.79, 2.50), "empathetic_dialogues": (77.72, 80.07, 2.44), "isear": (75.69, 75.71, 3.83)},
    "sd": {"goemotions": (73.12, 82.20, 5.39), "empathetic_dialogues": (77.91, 80.23, 4.83), "isear": (76.63, 76.65, 8.22)},
    "csd": {"goemotions": (73.22, 82.33, 1.50), "empathetic_dialogues": (77.84, 79.98, 1.91), "isear": (76.29, 76.31, 3.57)},
    "sim_mixup_csd": {"goemotions": (74.01, 82.68, 1.44), "empathetic_dialogues": (77.90, 80.02, 1.81), "isear": (76.79, 76.81, 3.13)},
    "ea_m_mixup": {"goemotions": (71.37, 81.54, 5.43), "empathetic_dialogues": (77.24, 79.57, 4.25), "isear": (74.32, 74.34, 8.19)},
    "sim_m_mixup": {"goemotions": (71.59, 81.70, 6.13), "empathetic_dialogues": (77.11, 79.42, 3.65), "isear": (74.60, 74.62, 7.87)},
    "rand_mixup_csd": {"goemotions": (73.23, 82.24, 1.56), "empathetic_dialogues": (78.18, 80.38, 1.90), "isear": (76.51, 76.52, 3.13)},
    "ea_mixup_csd": {"goemotions": (73.32, 82.24, 1.51), "empathetic_dialogues": (77.79, 80.08, 2.05), "isear": (76.74, 76.76, 3.29)},
    # Table 8
    "csd_scaled_student": {"goemotions": (73.19, 82.24, 1.68), "empathetic_dialogues": (77.83, 80.17, 1.84), "isear": (76.29, 76.31, 2.98)},
    "sim_mixup_csd_scaled_student": {"goemotions": (73.78, 82.51, 1.61), "empathetic_dialogues": (77.79, 79.93, 1.86), "isear": (76.52, 76.54, 3.27)},
    # Table 1 baseline "Electra+LCL" (ELECTRA-base, not roberta-base; raw ECE; no OOD row in Table 2)
    "electra_lcl": {"goemotions": (72.13, 82.26, 4.27), "empathetic_dialogues": (77.46, 79.73, 6.06), "isear": (76.29, 76.31, 8.71)},
}

OOD_TABLE: dict[str, dict[str, tuple[float, float, float]]] = {
    "ce_no_ft": {"goemotions": (47.63, 76.03, 14.60), "empathetic_dialogues": (38.87, 49.06, 16.33), "isear": (63.58, 70.50, 8.20)},
    "ce": {"goemotions": (56.41, 82.21, 11.10), "empathetic_dialogues": (42.59, 53.89, 16.28), "isear": (79.68, 87.49, 5.29)},
    "rand_m_mixup": {"goemotions": (56.51, 82.17, 11.08), "empathetic_dialogues": (41.23, 53.48, 13.92), "isear": (80.90, 88.20, 3.66)},
    "ea66_m_mixup": {"goemotions": (56.71, 82.50, 10.09), "empathetic_dialogues": (39.89, 52.05, 15.93), "isear": (79.28, 87.54, 3.53)},
    "1g_sd_ea66": {"goemotions": (58.56, 82.90, 10.28), "empathetic_dialogues": (41.60, 54.03, 14.53), "isear": (78.91, 86.99, 4.65)},
    "1g_csd_ea66": {"goemotions": (58.18, 82.65, 10.30), "empathetic_dialogues": (41.58, 53.31, 14.56), "isear": (80.74, 87.89, 4.12)},
    "sd": {"goemotions": (56.29, 82.08, 11.26), "empathetic_dialogues": (41.68, 53.82, 15.42), "isear": (79.53, 87.32, 5.57)},
    "csd": {"goemotions": (56.09, 82.23, 11.21), "empathetic_dialogues": (42.55, 53.67, 14.59), "isear": (79.89, 86.94, 5.86)},
    "sim_mixup_csd": {"goemotions": (57.23, 82.54, 10.30), "empathetic_dialogues": (43.64, 54.38, 11.88), "isear": (82.76, 88.59, 4.08)},
    # Table 4
    "ea_m_mixup": {"goemotions": (57.04, 82.47, 10.48), "empathetic_dialogues": (42.78, 54.42, 13.07), "isear": (79.19, 87.59, 4.07)},
    "sim_m_mixup": {"goemotions": (56.57, 82.48, 10.58), "empathetic_dialogues": (41.59, 53.78, 13.76), "isear": (80.85, 88.29, 3.59)},
    "rand_mixup_csd": {"goemotions": (57.72, 82.48, 10.79), "empathetic_dialogues": (41.81, 53.37, 15.78), "isear": (81.26, 88.22, 4.22)},
    "ea_mixup_csd": {"goemotions": (56.91, 82.35, 10.63), "empathetic_dialogues": (41.43, 54.35, 14.09), "isear": (82.73, 88.57, 3.74)},
    # Table 9
    "csd_scaled_student": {"goemotions": (57.08, 82.61, 10.87), "empathetic_dialogues": (42.04, 53.56, 15.61), "isear": (79.91, 86.90, 6.02)},
    "sim_mixup_csd_scaled_student": {"goemotions": (57.13, 82.53, 10.41), "empathetic_dialogues": (42.26, 53.62, 13.81), "isear": (80.06, 87.13, 4.89)},
}

ID_STD: dict[str, dict[str, tuple[float, float, float]]] = {
    "ce": {"goemotions": (0.5, 0.2, 0.3), "empathetic_dialogues": (0.3, 0.3, 0.5), "isear": (0.4, 0.4, 0.3)},
    "ce_ts": {"goemotions": (0.5, 0.2, 0.3), "empathetic_dialogues": (0.3, 0.3, 0.3), "isear": (0.4, 0.4, 0.3)},
    "rand_m_mixup": {"goemotions": (0.6, 0.2, 0.4), "empathetic_dialogues": (0.5, 0.5, 0.7), "isear": (0.7, 0.7, 0.8)},
    "rand_m_mixup_ts": {"goemotions": (0.6, 0.2, 0.5), "empathetic_dialogues": (0.5, 0.5, 0.5), "isear": (0.7, 0.7, 0.8)},
    "ea66_m_mixup": {"goemotions": (0.4, 0.3, 0.3), "empathetic_dialogues": (0.9, 0.8, 1.3), "isear": (0.9, 0.9, 0.6)},
    "ea66_m_mixup_ts": {"goemotions": (0.4, 0.3, 0.5), "empathetic_dialogues": (0.9, 0.8, 0.5), "isear": (0.9, 0.9, 0.9)},
    "1g_sd_ea66": {"goemotions": (0.5, 0.2, 0.2), "empathetic_dialogues": (0.2, 0.2, 0.3), "isear": (0.3, 0.3, 0.3)},
    "1g_csd_ea66": {"goemotions": (0.3, 0.1, 0.4), "empathetic_dialogues": (0.4, 0.3, 0.6), "isear": (0.5, 0.5, 0.6)},
    "sd": {"goemotions": (0.4, 0.2, 0.2), "empathetic_dialogues": (0.3, 0.3, 0.3), "isear": (0.4, 0.4, 0.4)},
    "csd": {"goemotions": (0.3, 0.2, 0.2), "empathetic_dialogues": (0.3, 0.2, 0.4), "isear": (0.3, 0.3, 0.7)},
    "sim_mixup_csd": {"goemotions": (0.3, 0.1, 0.1), "empathetic_dialogues": (0.4, 0.3, 0.4), "isear": (0.3, 0.3, 0.3)},
    "ea_m_mixup": {"goemotions": (0.5, 0.2, 0.3), "empathetic_dialogues": (0.4, 0.3, 0.4), "isear": (0.6, 0.6, 0.6)},
    "sim_m_mixup": {"goemotions": (0.6, 0.3, 0.3), "empathetic_dialogues": (0.4, 0.5, 0.7), "isear": (0.7, 0.7, 0.8)},
    "rand_mixup_csd": {"goemotions": (0.2, 0.1, 0.2), "empathetic_dialogues": (0.5, 0.4, 0.5), "isear": (0.4, 0.4, 0.4)},
    "ea_mixup_csd": {"goemotions": (0.3, 0.1, 0.2), "empathetic_dialogues": (0.2, 0.1, 0.3), "isear": (0.2, 0.2, 0.7)},
    # Table 8
    "csd_scaled_student": {"goemotions": (0.5, 0.3, 0.3), "empathetic_dialogues": (0.3, 0.3, 0.3), "isear": (0.6, 0.6, 0.3)},
    "sim_mixup_csd_scaled_student": {"goemotions": (0.3, 0.2, 0.3), "empathetic_dialogues": (0.3, 0.2, 0.4), "isear": (0.1, 0.1, 0.3)},
    "electra_lcl": {"goemotions": (0.6, 0.2, 0.3), "empathetic_dialogues": (0.2, 0.3, 0.2), "isear": (0.5, 0.5, 0.5)},
}

OOD_STD: dict[str, dict[str, tuple[float, float, float]]] = {
    "ce_no_ft": {"goemotions": (0.7, 0.5, 0.4), "empathetic_dialogues": (0.6, 0.5, 1.7), "isear": (1.8, 1.7, 0.9)},
    "ce": {"goemotions": (2.4, 0.8, 0.8), "empathetic_dialogues": (1.4, 1.7, 2.4), "isear": (3.0, 1.1, 1.8)},
    "rand_m_mixup": {"goemotions": (1.0, 0.4, 0.7), "empathetic_dialogues": (2.1, 1.5, 1.2), "isear": (2.7, 1.2, 0.8)},
    "ea66_m_mixup": {"goemotions": (1.5, 0.6, 0.9), "empathetic_dialogues": (1.9, 1.8, 2.5), "isear": (3.1, 1.2, 0.9)},
    "1g_sd_ea66": {"goemotions": (1.3, 0.6, 1.3), "empathetic_dialogues": (0.7, 0.8, 0.9), "isear": (1.7, 1.2, 0.6)},
    "1g_csd_ea66": {"goemotions": (1.4, 0.4, 1.0), "empathetic_dialogues": (0.6, 1.1, 2.1), "isear": (2.2, 1.2, 0.6)},
    "sd": {"goemotions": (1.5, 0.7, 1.0), "empathetic_dialogues": (0.9, 1.8, 2.7), "isear": (2.4, 0.9, 0.8)},
    "csd": {"goemotions": (1.9, 0.6, 0.8), "empathetic_dialogues": (0.8, 1.1, 2.8), "isear": (2.4, 1.3, 0.9)},
    "sim_mixup_csd": {"goemotions": (1.4, 0.6, 1.2), "empathetic_dialogues": (0.8, 0.4, 2.0), "isear": (1.2, 0.8, 1.0)},
    # Table 4
    "ea_m_mixup": {"goemotions": (1.4, 0.4, 1.0), "empathetic_dialogues": (1.7, 1.4, 2.4), "isear": (3.2, 1.5, 0.9)},
    "sim_m_mixup": {"goemotions": (1.6, 0.5, 1.2), "empathetic_dialogues": (1.6, 1.6, 2.5), "isear": (1.6, 0.7, 0.7)},
    "rand_mixup_csd": {"goemotions": (1.4, 0.7, 1.4), "empathetic_dialogues": (0.9, 1.0, 1.8), "isear": (3.5, 2.0, 1.2)},
    "ea_mixup_csd": {"goemotions": (1.3, 0.5, 1.1), "empathetic_dialogues": (0.8, 1.2, 2.0), "isear": (1.5, 1.0, 0.7)},
    # Table 9
    "csd_scaled_student": {"goemotions": (2.0, 0.7, 0.9), "empathetic_dialogues": (1.1, 1.4, 1.3), "isear": (2.2, 1.5, 0.8)},
    "sim_mixup_csd_scaled_student": {"goemotions": (0.9, 0.3, 1.0), "empathetic_dialogues": (1.2, 1.4, 2.6), "isear": (2.5, 1.6, 1.2)},
}

ID_PER_GENERATION: dict[str, dict[str, tuple[Generation, Generation, Generation, Generation]]] = {
    "sd": {
        "goemotions": ((72.71, 0.5, 5.65, 0.3), (73.12, 0.4, 5.39, 0.2), (73.06, 0.4, 5.49, 0.3), (72.80, 0.3, 5.54, 0.3)),
        "empathetic_dialogues": ((77.56, 0.3, 5.52, 0.5), (77.46, 0.2, 5.12, 0.3), (77.88, 0.3, 4.86, 0.2), (77.91, 0.3, 4.83, 0.3)),
        "isear": ((75.60, 0.4, 9.12, 0.3), (76.26, 0.3, 9.09, 0.8), (76.32, 0.7, 8.66, 0.6), (76.63, 0.4, 8.22, 0.4)),
    },
    "csd": {
        "goemotions": ((72.71, 0.5, 1.70, 0.3), (73.01, 0.6, 1.62, 0.4), (73.22, 0.3, 1.50, 0.2), (73.13, 0.4, 1.71, 0.4)),
        "empathetic_dialogues": ((77.56, 0.3, 1.96, 0.3), (77.74, 0.2, 1.93, 0.5), (77.84, 0.3, 1.91, 0.4), (77.74, 0.4, 2.14, 0.4)),
        "isear": ((75.60, 0.4, 4.00, 0.3), (75.76, 0.4, 4.15, 0.6), (76.29, 0.3, 3.57, 0.7), (75.93, 0.4, 4.03, 0.4)),
    },
    "rand_mixup_csd": {
        "goemotions": ((71.46, 0.6, 3.16, 0.5), (72.92, 0.4, 2.46, 0.2), (73.23, 0.2, 1.56, 0.2), (72.76, 0.2, 2.57, 0.2)),
        "empathetic_dialogues": ((77.10, 0.5, 2.60, 0.5), (77.59, 0.3, 2.17, 0.3), (78.18, 0.5, 1.90, 0.5), (78.04, 0.3, 1.94, 0.3)),
        "isear": ((74.43, 0.7, 3.74, 0.8), (75.21, 0.4, 4.16, 0.3), (76.51, 0.4, 3.13, 0.4), (76.48, 0.2, 3.21, 0.2)),
    },
    "ea_mixup_csd": {
        "goemotions": ((71.37, 0.5, 3.10, 0.4), (72.48, 0.4, 2.80, 0.3), (72.98, 0.3, 1.75, 0.3), (73.32, 0.3, 1.51, 0.2)),
        "empathetic_dialogues": ((77.24, 0.4, 2.63, 0.6), (77.63, 0.2, 2.35, 0.2), (77.66, 0.3, 2.18, 0.3), (77.79, 0.2, 2.05, 0.3)),
        "isear": ((74.32, 0.6, 4.52, 0.7), (75.34, 0.3, 3.96, 0.3), (75.82, 0.3, 3.83, 0.4), (76.74, 0.2, 3.29, 0.7)),
    },
    "sim_mixup_csd": {
        "goemotions": ((71.59, 0.6, 2.96, 0.4), (72.62, 0.4, 2.11, 0.2), (73.17, 0.4, 1.81, 0.2), (74.01, 0.3, 1.44, 0.1)),
        "empathetic_dialogues": ((77.11, 0.4, 2.12, 0.5), (77.85, 0.4, 1.89, 0.5), (77.90, 0.3, 1.81, 0.4), (77.48, 0.4, 2.00, 0.2)),
        "isear": ((74.60, 0.7, 3.77, 0.5), (76.34, 0.3, 4.17, 0.6), (76.35, 0.4, 3.86, 1.0), (76.79, 0.3, 3.13, 0.3)),
    },
}

OOD_PER_GENERATION: dict[str, dict[str, tuple[Generation, Generation, Generation, Generation]]] = {
    "sd": {
        "goemotions": ((56.41, 2.4, 11.10, 0.8), (56.29, 1.5, 11.26, 1.0), (57.14, 1.8, 10.72, 0.8), (56.80, 2.5, 11.28, 1.0)),
        "empathetic_dialogues": ((42.59, 1.4, 16.28, 2.4), (41.72, 1.4, 15.44, 2.3), (42.03, 1.8, 14.37, 3.0), (41.68, 0.9, 15.42, 2.7)),
        "isear": ((79.68, 3.0, 5.29, 1.8), (78.23, 1.7, 5.42, 0.6), (78.71, 1.9, 5.48, 0.7), (79.53, 2.4, 5.57, 0.8)),
    },
    "csd": {
        "goemotions": ((56.41, 2.4, 11.10, 0.8), (57.43, 1.4, 10.66, 0.9), (56.09, 1.9, 11.21, 0.8), (56.94, 2.5, 11.39, 1.2)),
        "empathetic_dialogues": ((42.59, 1.4, 16.28, 2.4), (41.94, 1.2, 13.34, 2.3), (42.55, 0.8, 14.59, 2.8), (43.18, 2.1, 14.06, 2.9)),
        "isear": ((79.68, 3.0, 5.29, 1.8), (79.19, 3.4, 5.41, 1.0), (79.89, 2.4, 5.86, 0.9), (81.12, 2.3, 5.14, 1.4)),
    },
    "rand_mixup_csd": {
        "goemotions": ((56.51, 1.0, 11.08, 0.7), (56.88, 1.0, 11.14, 1.2), (57.72, 1.4, 10.79, 1.4), (57.25, 1.8, 9.96, 1.4)),
        "empathetic_dialogues": ((41.23, 2.1, 13.92, 1.2), (42.41, 1.1, 12.95, 1.7), (41.81, 0.9, 14.78, 1.8), (40.73, 2.1, 15.23, 0.9)),
        "isear": ((80.90, 2.7, 3.66, 0.8), (81.39, 2.8, 4.45, 1.4), (81.26, 3.5, 4.22, 1.2), (82.57, 1.7, 4.14, 0.6)),
    },
    "ea_mixup_csd": {
        "goemotions": ((57.04, 1.4, 10.48, 1.0), (56.78, 1.4, 10.69, 1.0), (56.48, 1.4, 10.50, 1.0), (56.91, 1.3, 10.63, 1.1)),
        "empathetic_dialogues": ((42.78, 1.7, 13.07, 2.4), (42.01, 1.6, 14.51, 2.6), (42.37, 1.4, 13.60, 3.7), (41.43, 0.8, 14.09, 2.0)),
        "isear": ((79.19, 3.2, 4.07, 0.9), (82.21, 2.2, 3.42, 0.9), (80.75, 1.3, 4.53, 1.0), (82.73, 1.5, 3.74, 0.7)),
    },
    "sim_mixup_csd": {
        "goemotions": ((56.57, 1.6, 10.58, 1.2), (56.89, 1.7, 10.50, 1.2), (57.38, 1.1, 10.37, 1.3), (57.23, 1.4, 10.30, 1.2)),
        "empathetic_dialogues": ((41.59, 1.6, 13.76, 2.5), (42.51, 1.2, 12.59, 1.0), (43.64, 0.8, 11.88, 2.0), (42.08, 0.5, 11.92, 1.8)),
        "isear": ((80.85, 1.6, 3.59, 0.7), (78.93, 2.3, 4.71, 1.1), (81.02, 2.9, 4.60, 1.0), (82.76, 1.2, 4.08, 1.0)),
    },
}

PAPER_GENERATION: dict[str, dict[str, dict[str, int]]] = {
    "id": {
        "sd": {"goemotions": 2, "empathetic_dialogues": 4, "isear": 4},
        "csd": {"goemotions": 3, "empathetic_dialogues": 3, "isear": 3},
        "rand_mixup_csd": {"goemotions": 3, "empathetic_dialogues": 3, "isear": 3},
        "ea_mixup_csd": {"goemotions": 4, "empathetic_dialogues": 4, "isear": 4},
        "sim_mixup_csd": {"goemotions": 4, "empathetic_dialogues": 3, "isear": 4},
    },
    "ood": {
        "sd": {"goemotions": 2, "empathetic_dialogues": 4, "isear": 4},
        "csd": {"goemotions": 3, "empathetic_dialogues": 3, "isear": 3},
        "rand_mixup_csd": {"goemotions": 3, "empathetic_dialogues": 3, "isear": 3},
        "ea_mixup_csd": {"goemotions": 4, "empathetic_dialogues": 4, "isear": 4},
        "sim_mixup_csd": {"goemotions": 4, "empathetic_dialogues": 3, "isear": 4},
    },
}

# (setting, method, dataset) -> the GENERATION_FIELDS entry where the main table differs from its PAPER_GENERATION
CONTRADICTED_CELLS: dict[tuple[str, str, str], str] = {
    ("id", "sim_mixup_csd", "empathetic_dialogues"): "f1_std",
    ("ood", "rand_mixup_csd", "empathetic_dialogues"): "ece_mean",
}

PAPER_CONTRADICTIONS: list[str] = [
    "ID, sim_mixup_csd on empathetic_dialogues (Sim-MixUp+CSD, Empathetic Dialogues): Tables 1, 3 and 8 give macro F1"
    " 77.90 with std 0.4, Table 11's generation 3 gives 77.90 with std 0.3 (its ECE 1.81 std 0.4 matches Table 1;"
    " generation 2 has 77.85 std 0.4); no column of Table 11 has 77.90 std 0.4.",
    "OOD, rand_mixup_csd on empathetic_dialogues (Rand-M-MixUp+CSD, SSEC): Table 4 gives ECE 15.78 (std 1.8),"
    " Table 12's generation 3 gives 14.78 (std 1.8; its macro F1 41.81 std 0.9 matches Table 4); no column of"
    " Table 12 has 15.78.",
]

# The LLM rows of Tables 1 (ID test) and 2 (OOD test without fine-tuning; keyed by the ID dataset as
# OOD_TABLE), by emocal's preset names (trainables/llm/methods.py). Zero-shot rows have no std (one
# greedy run); few-shot rows are mean ± std over the paper's 3 prompts. Table 2 has few-shot rows only.
LLM_ID_TABLE: dict[str, dict[str, tuple[float, float, float]]] = {
    "llama3_8b_zs": {"goemotions": (49.68, 64.58, 17.03), "empathetic_dialogues": (60.69, 62.53, 20.83), "isear": (69.81, 69.88, 14.56)},
    "gemma2_9b_zs": {"goemotions": (49.95, 64.85, 22.03), "empathetic_dialogues": (60.53, 62.80, 25.75), "isear": (74.39, 74.42, 13.50)},
    "llama3_8b_fs": {"goemotions": (46.87, 61.83, 23.49), "empathetic_dialogues": (58.53, 60.89, 24.59), "isear": (69.74, 69.81, 17.27)},
    "gemma2_9b_fs": {"goemotions": (50.19, 65.50, 23.73), "empathetic_dialogues": (61.23, 62.94, 28.15), "isear": (74.41, 74.44, 15.66)},
}
LLM_ID_STD: dict[str, dict[str, tuple[float, float, float]]] = {
    "llama3_8b_fs": {"goemotions": (0.2, 0.2, 0.5), "empathetic_dialogues": (0.7, 0.6, 0.2), "isear": (0.6, 0.6, 0.8)},
    "gemma2_9b_fs": {"goemotions": (0.5, 0.4, 0.8), "empathetic_dialogues": (0.6, 0.5, 0.2), "isear": (0.4, 0.4, 0.4)},
}
LLM_OOD_TABLE: dict[str, dict[str, tuple[float, float, float]]] = {
    "llama3_8b_fs": {"goemotions": (54.71, 77.25, 10.04), "empathetic_dialogues": (41.33, 49.44, 36.36), "isear": (71.59, 75.12, 11.40)},
    "gemma2_9b_fs": {"goemotions": (58.86, 80.85, 9.83), "empathetic_dialogues": (43.30, 53.03, 37.80), "isear": (69.72, 75.80, 12.39)},
}
LLM_OOD_STD: dict[str, dict[str, tuple[float, float, float]]] = {
    "llama3_8b_fs": {"goemotions": (0.5, 0.3, 0.4), "empathetic_dialogues": (1.1, 0.5, 0.5), "isear": (0.5, 0.6, 0.8)},
    "gemma2_9b_fs": {"goemotions": (0.6, 0.8, 1.0), "empathetic_dialogues": (1.0, 0.6, 0.6), "isear": (0.4, 0.2, 0.3)},
}
