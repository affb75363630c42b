"""The numbers the RJCMA paper reports (Praveen & Alam, CVPRW 2024, §5, Tables 1-4), and those its authors'
gated follow-ups publish (:data:`FAMILY_METHODS`), as constants.

These are the only result numbers typed by hand in this project: they are the papers', copied from the text named
beside each, so the results chapter can print reproduced numbers beside them. All values are CCC (paper eq. 15).
"""

from __future__ import annotations

# Table 1: six-fold cross-validation of RJCMA (l = 3); fold 0 is the official validation set.
TABLE1_FOLDS: dict[int, dict[str, float]] = {
    0: {"valence": 0.455, "arousal": 0.652, "mean": 0.553},
    1: {"valence": 0.585, "arousal": 0.674, "mean": 0.629},
    2: {"valence": 0.467, "arousal": 0.631, "mean": 0.549},
    3: {"valence": 0.536, "arousal": 0.647, "mean": 0.591},
    4: {"valence": 0.432, "arousal": 0.629, "mean": 0.526},
    5: {"valence": 0.463, "arousal": 0.615, "mean": 0.539},
}

# Table 2: fusion methods on the official validation set (fold 0) and the test set.
# `fusion` names our config value reproducing that row (None: not reproduced here, a different system).
TABLE2_METHODS: list[dict] = [
    {"method": "Zhang et al. [37]", "type": "Transformers", "fusion": None,
     "val_valence": 0.464, "val_arousal": 0.640, "test_valence": 0.648, "test_arousal": 0.625},
    {"method": "Zhang et al. [42]", "type": "Leader-Follower", "fusion": "leader-follower",
     "val_valence": 0.441, "val_arousal": 0.645, "test_valence": 0.552, "test_arousal": 0.629},
    {"method": "Zhou et al. [36]", "type": "Transformers", "fusion": None,
     "val_valence": 0.550, "val_arousal": 0.681, "test_valence": 0.500, "test_arousal": 0.632},
    {"method": "Zhang et al. [17]", "type": "Transformers", "fusion": None,
     "val_valence": 0.554, "val_arousal": 0.659, "test_valence": 0.523, "test_arousal": 0.545},
    {"method": "Meng et al. [16]", "type": "Transformers", "fusion": None,
     "val_valence": 0.588, "val_arousal": 0.668, "test_valence": 0.606, "test_arousal": 0.596},
    {"method": "Praveen et al. [21]", "type": "JCA", "fusion": "jca",
     "val_valence": 0.663, "val_arousal": 0.584, "test_valence": 0.374, "test_arousal": 0.363},
    {"method": "Praveen et al. [23]", "type": "RJCA", "fusion": None,
     "val_valence": 0.703, "val_arousal": 0.623, "test_valence": 0.467, "test_arousal": 0.405},
    {"method": "Praveen et al. [23]* (paper's setup)", "type": "RJCA", "fusion": "rjca",
     "val_valence": 0.443, "val_arousal": 0.639, "test_valence": 0.537, "test_arousal": 0.576},
    {"method": "RJCMA (paper)", "type": "RJCMA", "fusion": "rjcma",
     "val_valence": 0.455, "val_arousal": 0.652, "test_valence": 0.542, "test_arousal": 0.619},
]

# The same authors' gated follow-ups (the comparison's family rows, audio + visual), on Aff-Wild2: official
# validation set and test set. Only numbers read in the source named are typed here.
# - GRJCA and HGRJCA: Praveen, Alam & Charton, "United we stand, Divided we fall: Handling Weak Complementary
#   Relationships for Audio-Visual Emotion Recognition in Valence-Arousal Space", arXiv 2503.12261v2. Its abstract
#   gives "the proposed model"'s CCC, test (validation): valence .561 (.623), arousal .620 (.660); it does not say
#   which of the paper's two models (GRJCA; HGRJCA, with a gate at every iteration) that is, so the row names both.
#   The per-model rows of the paper's tables were not read for this module and are not typed. The test set is that
#   of the 8th ABAW challenge (the authors' code README: results submitted to the 8th ABAW).
# - DCA (Praveen & Alam, "Cross-Attention is not always needed: Dynamic Cross-Attention for Audio-Visual Dimensional
#   Emotion Recognition", ICME 2024, arXiv 2403.19554): its abstract gives no numbers and its tables were not read
#   for this module: no DCA row.
FAMILY_METHODS: list[dict] = [
    {"method": "GRJCA / HGRJCA (the paper's proposed model)", "type": "Gated RJCA", "fusions": ("grjca", "hgrjca"),
     "source": "Praveen, Alam & Charton, arXiv 2503.12261v2, abstract",
     "val_valence": 0.623, "val_arousal": 0.660, "test_valence": 0.561, "test_arousal": 0.620},
]

# Table 3: number of recursions l on fold 1.
TABLE3_RECURSIONS: dict[int, dict[str, float]] = {
    1: {"valence": 0.568, "arousal": 0.656, "mean": 0.607},
    2: {"valence": 0.576, "arousal": 0.669, "mean": 0.618},
    3: {"valence": 0.585, "arousal": 0.674, "mean": 0.629},
    4: {"valence": 0.579, "arousal": 0.652, "mean": 0.615},
}
TABLE3_FOLD = 1

# Table 4: 6th ABAW test set (test labels are not public; only the organisers can score a submission).
TABLE4_TEST: list[dict] = [
    {"team": "Netease Fuxi AI Lab [62]", "modalities": "Audio, Visual", "ensemble": True,
     "valence": 0.6873, "arousal": 0.6569, "mean": 0.6721},
    {"team": "RJCMA (paper)", "modalities": "Audio, Visual, Text", "ensemble": False,
     "valence": 0.5418, "arousal": 0.6196, "mean": 0.5807},
    {"team": "CtyunAI [63]", "modalities": "Visual", "ensemble": False,
     "valence": 0.5223, "arousal": 0.6057, "mean": 0.5640},
    {"team": "SUN-CE [64]", "modalities": "Audio, Visual", "ensemble": True,
     "valence": 0.5355, "arousal": 0.5861, "mean": 0.5608},
    {"team": "USTC-IAT-United [65]", "modalities": "Audio, Visual", "ensemble": False,
     "valence": 0.5208, "arousal": 0.5748, "mean": 0.5478},
    {"team": "HSEmotion [66]", "modalities": "Visual", "ensemble": False,
     "valence": 0.4925, "arousal": 0.5461, "mean": 0.5193},
    {"team": "KBS-DGU", "modalities": "Audio, Visual", "ensemble": False,
     "valence": 0.4836, "arousal": 0.5318, "mean": 0.5077},
    {"team": "ETS-LIVIA [67]", "modalities": "Audio, Visual", "ensemble": False,
     "valence": 0.4198, "arousal": 0.4669, "mean": 0.4434},
    {"team": "CAS-MAIS", "modalities": "Audio, Visual, Text", "ensemble": False,
     "valence": 0.4245, "arousal": 0.3414, "mean": 0.3830},
    {"team": "IMLAB [68]", "modalities": "Visual", "ensemble": False,
     "valence": 0.2912, "arousal": 0.2456, "mean": 0.2684},
    {"team": "Baseline [60]", "modalities": "Visual", "ensemble": False,
     "valence": 0.2110, "arousal": 0.1910, "mean": 0.2010},
]


def table1_mean() -> dict[str, float]:
    """Mean over the six folds of Table 1 (computed, not reported by the paper)."""
    keys = ("valence", "arousal", "mean")
    return {k: sum(r[k] for r in TABLE1_FOLDS.values()) / len(TABLE1_FOLDS) for k in keys}
