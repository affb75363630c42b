"""What a reader is offered outside the notebooks: the command line's help (what each command does, and an example
that parses), `make help` (every target), the book's facts from one place (the chapters' substitutions, the cited
references in the bibliography)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rjcma.book import facts
from rjcma.book.citations import PAPER_REFERENCES, cite_paper_refs, cited_keys
from rjcma.cli import COMMANDS, EXAMPLES, build_parser

REPO = Path(__file__).resolve().parents[1]


def test_rjcma_help_says_what_it_does_and_shows_examples(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    intro = out.split("\n\n")[1]
    assert "valence and arousal" in intro and "one entry point" not in out, intro
    assert "examples:" in out and "make book" in out and "rjcma predict" in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_a_description_and_an_example_that_parses(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert f"example:\n  {EXAMPLES[command]}" in out
    words = EXAMPLES[command].split()
    assert words[:2] == ["rjcma", command]
    args = build_parser().parse_args(words[1:])
    assert args.command == command


def test_info_profile_has_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["info", "--help"])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("--profile"))
    assert len(line.split()) > 2, f"--profile has no help: {line!r}"


def test_make_help_lists_every_target():
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", text)) - {"help"}
    out = subprocess.run(["make", "-s", "-C", str(REPO), "help"], capture_output=True, text=True).stdout
    listed = set(re.findall(r"(?m)^make ([a-z-]+)", out))
    assert targets <= listed, f"make help omits {sorted(targets - listed)}"
    assert listed <= targets, f"make help lists targets without a rule: {sorted(listed - targets)}"


def test_every_substitution_a_chapter_uses_is_defined():
    subs = facts.substitutions()
    used = {m for p in (REPO / "book").glob("*.md") for m in re.findall(r"\{\{\s*(\w+)\s*\}\}", p.read_text())}
    assert used, "the chapters use no substitution"
    assert not used - set(subs), f"undefined substitutions: {sorted(used - set(subs))}"
    assert subs["demo_stride"] != subs["paper_stride"], "the demo's stride differs from the paper's"
    assert int(subs["student_minutes"]) > int(subs["train_run_seconds"]) * int(subs["student_runs"]) / 2 / 60


def test_no_chapter_types_a_fact_the_facts_module_holds():
    """The numbers the chapters used to repeat by hand (and that disagreed) come from the substitutions."""
    text = "\n".join(p.read_text() for p in (REPO / "book").glob("*.md") if p.name != "inference.md")
    for stale in ("stride of 200", "K = 300 frames with a stride", "a quarter of an hour", "Haar cascade"):
        assert stale not in text, stale


def test_every_cited_reference_is_in_the_bibliography():
    bib = (REPO / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = set(cited_keys())
    for p in (REPO / "book").glob("*.md"):
        for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", p.read_text()):
            cited |= {k.strip() for k in group.split(",")}
    assert cited <= keys, f"cited but not in book/references.bib: {sorted(cited - keys)}"


def test_paper_reference_numbers_are_written_as_author_and_year():
    assert cite_paper_refs("leader-follower [42]") == f"leader-follower ({PAPER_REFERENCES[42][0]})"
    assert cite_paper_refs("Zhang et al. [37]") == "Zhang et al. 2023"
    assert cite_paper_refs("Praveen et al. [23]* (paper's setup)") == "Praveen et al. 2023* (paper's setup)"
    assert cite_paper_refs("KBS-DGU") == "KBS-DGU"
