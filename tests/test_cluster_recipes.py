"""The commands of the book's chapter *Reproducing on Aff-Wild2* (book/reproducing.md), dry-run.

Every ``bash`` block of the chapter runs in bash exactly as written, after the chapter's own settings block (which
builds ``$SETS`` from ``paper.sets``), with ``rjcma``, ``accelerate`` and ``torchrun`` replaced by functions that
print their arguments, and ``srun``/``scontrol``/``source`` by stand-ins. SLURM scripts run once per array task
(``#SBATCH --array``) and once per node (``--nodes``). Each printed command must then pass the real argument parser of
its program (rjcma's, accelerate's ``launch``, torchrun's), name an existing config profile with valid ``--set``
fields, and the arrays must cover their shards, folds and targets exactly once.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "reproducing.md"

SHIMS = r"""
_show() { printf 'CMD'; printf ' %q' "$@"; printf '\n'; }
rjcma() { _show rjcma "$@"; }
accelerate() { _show accelerate "$@"; }
torchrun() { _show torchrun "$@"; }
export -f _show rjcma accelerate torchrun
source() { :; }
scontrol() { echo node001; echo node002; }
srun() { local n; for ((n = 0; n < ${SLURM_NNODES:-1}; n++)); do SLURM_NODEID=$n "$@"; done; }
"""


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", CHAPTER.read_text(), flags=re.S)


def _run(script: str, cwd: Path, env: dict[str, str]) -> list[list[str]]:
    r = subprocess.run(["bash", "-c", SHIMS + script], cwd=cwd, env={"PATH": "/usr/bin:/bin", **env},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"bash failed on:\n{script}\n{r.stderr}"
    return [shlex.split(line[4:]) for line in r.stdout.splitlines() if line.startswith("CMD ")]


def _rjcma(argv: list[str]):
    from rjcma.cli import build_parser
    from rjcma.config import load_config

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        raise AssertionError(f"rjcma rejects: {shlex.join(argv)}") from e
    cfg = load_config(args.profile, getattr(args, "set", []))  # profile and every --set field exist
    return args, cfg


def _launched(argv: list[str]):
    """accelerate launch / torchrun argv -> (launcher args, rjcma args, config)."""
    if argv[0] == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        assert argv[1] == "launch", argv
        parser, rest = launch_command_parser(), argv[2:]
    else:
        from torch.distributed.run import get_args_parser

        parser, rest = get_args_parser(), argv[1:]
    try:
        la = parser.parse_args(rest)
    except SystemExit as e:
        raise AssertionError(f"{argv[0]} rejects: {shlex.join(argv)}") from e
    assert la.module and la.training_script == "rjcma.cli", argv  # `-m rjcma.cli`: the package's entry point
    return (la, *_rjcma(list(la.training_script_args)))


@pytest.fixture(scope="module")
def chapter_commands(tmp_path_factory) -> list[tuple[str, dict[str, str], list[str]]]:
    """(script kind, SLURM environment, argv) of every command the chapter gives."""
    blocks = _blocks()
    setup = [b for b in blocks if "paper.sets" in b]
    assert len(setup) == 1, "the chapter has one settings block that defines $SETS"
    cwd = tmp_path_factory.mktemp("chapter")
    out = []
    for b in blocks:
        if b is setup[0]:
            continue
        script = setup[0] + "\n" + b
        array = re.search(r"--array=(\d+)-(\d+)", b)
        nodes = re.search(r"--nodes=(\d+)", b)
        kind = "array" if array else "nodes" if nodes else "plain"
        tasks = range(int(array.group(1)), int(array.group(2)) + 1) if array else [None]
        for t in tasks:
            env = {"SLURM_JOB_NODELIST": "node[001-002]"}
            if t is not None:
                env["SLURM_ARRAY_TASK_ID"] = str(t)
            if nodes:
                env["SLURM_NNODES"] = nodes.group(1)
            out += [(kind, env, argv) for argv in _run(script, cwd, env)]
    return out


def test_every_command_of_the_chapter_parses(chapter_commands):
    names = [argv[0] for _k, _e, argv in chapter_commands]
    assert {"rjcma", "accelerate", "torchrun"} <= set(names)
    for _kind, _env, argv in chapter_commands:
        if argv[0] == "rjcma":
            args, cfg = _rjcma(argv[1:])
        else:
            _la, args, cfg = _launched(argv)
        assert args.profile == "paper" and cfg.data.corpus == "/data/affwild2"
        assert cfg.preprocess.punctuation_model.endswith("fullstop-punctuation-multilang-large")
        if getattr(args, "fold", None) is not None:
            assert 0 <= args.fold < cfg.data.num_folds


def test_sharded_preprocessing_array_covers_every_shard_once(chapter_commands):
    from rjcma.preprocess.pipeline import _parse_shard

    shards = [_rjcma(argv[1:])[0].shard for kind, _e, argv in chapter_commands
              if kind == "array" and argv[:2] == ["rjcma", "preprocess"]]
    assert shards, "no sharded preprocessing array in the chapter"
    parsed = [_parse_shard(s) for s in shards]
    n = {p[1] for p in parsed}
    assert len(n) == 1 and sorted(p[0] for p in parsed) == list(range(n.pop()))


def test_fold_target_array_covers_table1_once(chapter_commands):
    runs = []
    for kind, _e, argv in chapter_commands:
        if kind == "array" and argv[:2] == ["rjcma", "train"]:
            args, cfg = _rjcma(argv[1:])
            runs.append((args.fold, args.target))
    assert sorted(runs) == sorted((f, t) for f in range(6) for t in ("valence", "arousal"))


def test_multi_node_launch_has_one_rank_per_node(chapter_commands):
    launches = [(env, _launched(argv)) for kind, env, argv in chapter_commands if kind == "nodes"]
    assert launches, "no multi-node launch in the chapter"
    nodes = int(launches[0][0]["SLURM_NNODES"])
    ranks = sorted(int(la.machine_rank) for _env, (la, _a, _c) in launches)
    assert ranks == list(range(nodes))
    for _env, (la, args, _cfg) in launches:
        assert int(la.num_machines) == nodes and la.main_process_ip == "node001" and la.multi_gpu
        assert int(la.num_processes) % nodes == 0 and args.command == "train"
