"""The fusion registry: every value of ``model.fusion``, in one table (paper §3 and Table 2, and the family).

One row per fusion: the modalities it reads, the kind of module that builds it (the model,
:mod:`rjcma.models.rjcma`, maps each kind to a constructor), its label in the book's tables and its label in the
``rjcma compare`` summary. Config validation (:mod:`rjcma.config`), the model, the comparison
(:mod:`rjcma.train.cv`) and the book's tables (:mod:`rjcma.results_tables`) all read this table, so a new fusion is
one new row here plus, for a new kind, one constructor in the model.

Beyond the paper's rows: the same authors' gated follow-ups as their released code computes them (GRJCA, HGRJCA,
DCA; audio + visual), and ``gated-rjcma``, our own extension (GRJCA's gates on the paper's three-way recursion),
which is from no paper and says so in its labels.

This module is data only (base layer): it imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass

MODALITIES = ("audio", "visual", "text")
LEADER = "visual"  # leader of the leader-follower baseline (released LeaderFollowerAttentionNetwork)
RELEASED_ORDER = ("visual", "audio", "text")  # modality order of the released DCNLayer (and its follow-ups')


@dataclass(frozen=True)
class Fusion:
    """One fusion: ``modalities`` fixed (a tuple) or ``None`` = the configured ``model.modalities``."""

    name: str
    builder: str  # "joint-attention" | "released" | "concat" | "leader-follower" | "unimodal" | "released-gated"
    #              | "released-hierarchical" | "released-dynamic" | "gated-joint-attention"
    label: str  # row label in the book's tables
    run_label: str  # row label of `rjcma compare` (summary.json, summary.csv)
    modalities: tuple[str, ...] | None = None
    min_modalities: int = 1  # with configured modalities: at least this many
    iterations: int | None = None  # fixed recursions l (JCA: 1); None = model.num_iterations

    def modalities_for(self, configured: list[str] | tuple[str, ...]) -> list[str]:
        """The modalities, in order, this fusion reads when ``model.modalities`` is ``configured``.

        Raises ``ValueError`` naming the fusion when the configured modalities do not fit it."""
        if self.modalities is not None:
            return list(self.modalities)
        mods = list(configured)
        if len(mods) < self.min_modalities:
            count = {1: "one", 2: "two", 3: "three"}.get(self.min_modalities, str(self.min_modalities))
            raise ValueError(f"fusion {self.name!r} needs at least {count} modalities; "
                             f"cfg.model.modalities = {mods}")
        if self.builder == "leader-follower" and LEADER not in mods:
            raise ValueError(f"fusion {self.name!r} needs the leader {LEADER!r} in cfg.model.modalities = {mods}")
        return mods

    def compare_modalities(self) -> list[str]:
        """``model.modalities`` of this fusion's row in `rjcma compare`: its fixed ones, else all three. The released
        fusions read theirs in the released order whatever is configured; their rows keep the configured order
        (audio, visual, text), so their run folders and config hashes are those of the other rows of the same
        modalities."""
        if self.modalities is None:
            return list(MODALITIES)
        if self.builder.startswith("released"):
            return [m for m in MODALITIES if m in self.modalities]
        return list(self.modalities)


_ROWS = (
    Fusion("unimodal:audio", "unimodal", "unimodal audio (TCN + head)", "unimodal audio", ("audio",)),
    Fusion("unimodal:visual", "unimodal", "unimodal visual (TCN + head)", "unimodal visual", ("visual",)),
    Fusion("unimodal:text", "unimodal", "unimodal text (TCN + head)", "unimodal text", ("text",)),
    Fusion("concat", "concat", "early concatenation", "early concat (A+V+T)"),
    Fusion("leader-follower", "leader-follower", "leader-follower [42]", "leader-follower (A+V+T)",
           min_modalities=2),
    Fusion("jca", "joint-attention", "JCA [21]", "JCA (A+V)", ("audio", "visual"), iterations=1),
    Fusion("rjca", "joint-attention", "RJCA [23]", "RJCA (A+V)", ("audio", "visual")),
    # the released DCNLayer is three-way, called as (video, logmel, bert)
    Fusion("rjcma-released", "released", "RJCMA, released code's fusion", "RJCMA released fusion (A+V+T)",
           RELEASED_ORDER),
    Fusion("rjcma", "joint-attention", "RJCMA, paper's equations", "RJCMA paper (A+V+T)", min_modalities=2),
    # the same authors' follow-ups, as released: audio-visual, called as (video, audio)
    Fusion("grjca", "released-gated", "GRJCA, released code's fusion", "GRJCA released (A+V)",
           RELEASED_ORDER[:2]),
    Fusion("hgrjca", "released-hierarchical", "HGRJCA, released code's fusion", "HGRJCA released (A+V)",
           RELEASED_ORDER[:2]),
    Fusion("dca", "released-dynamic", "DCA, released code's fusion", "DCA released (A+V)", RELEASED_ORDER[:2]),
    # ours: GRJCA's gates on the paper's recursion over A+V+T; no paper proposes it
    Fusion("gated-rjcma", "gated-joint-attention", "gated RJCMA (ours, not from any paper)",
           "gated RJCMA, ours (A+V+T)", min_modalities=2),
)
FUSIONS: dict[str, Fusion] = {f.name: f for f in _ROWS}  # in the order of the comparison and the book's Table 2
