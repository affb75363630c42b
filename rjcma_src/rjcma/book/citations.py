"""The paper's references as the book cites them: the numbers in brackets its tables use (``[42]``), as the
author-year text the book prints and the key of ``book/references.bib`` (whose bibliography page lists them)."""

from __future__ import annotations

import re

# The paper's reference numbers that the book's tables print, as "author year" and the key in book/references.bib.
PAPER_REFERENCES: dict[int, tuple[str, str]] = {
    16: ("Meng et al. 2022", "meng2022multimodal"),
    17: ("Zhang et al. 2023", "zhang2023transformer"),
    21: ("Praveen et al. 2022", "praveen2022jca"),
    23: ("Praveen et al. 2023", "praveen2023rjca"),
    36: ("Zhou et al. 2023", "zhou2023tcn"),
    37: ("Zhang et al. 2023", "zhang2023mae"),
    42: ("Zhang, Zhao & Guan 2023", "zhang2023abaw5"),
    60: ("Kollias et al. 2024", "kollias2024abaw6"),
    62: ("Zhang et al. 2024", "zhang2024affective"),
    63: ("Zhou et al. 2024", "zhou2024boosting"),
    64: ("Dresvyanskiy et al. 2024", "dresvyanskiy2024sun"),
    65: ("Yu et al. 2024", "yu2024multimodal"),
    66: ("Savchenko 2024", "savchenko2024hsemotion"),
    67: ("Waligora et al. 2024", "waligora2024jmt"),
    68: ("Min et al. 2024", "min2024masked"),
}
# the family's published numbers (rjcma.paper_numbers.FAMILY_METHODS): their source as the book cites it
FAMILY_SOURCE = ("Praveen, Alam & Charton 2025", "praveen2025grjca")

_REF = re.compile(r"\s*\[(\d{1,2})\](\*?)")


def cite_paper_refs(text: str) -> str:
    """``"leader-follower [42]"`` → ``"leader-follower (Zhang, Zhao & Guan 2023)"``: the paper's bracketed numbers
    as author and year, which read the same in the book and in JupyterLab (the bibliography lists them)."""
    def one(m: re.Match) -> str:
        ref = PAPER_REFERENCES.get(int(m.group(1)))
        if ref is None:
            return m.group(0)
        surname = ref[0].split()[0].rstrip(",")
        if surname in text[: m.start()]:  # "Zhang et al. [37]": the authors are named already, add the year
            return f" {ref[0].rsplit(' ', 1)[1]}{m.group(2)}"
        return f" ({ref[0]}){m.group(2)}"

    return _REF.sub(one, text)


def cited_keys() -> list[str]:
    """Every bibliography key the generated tables can cite (book/references.bib must hold them)."""
    return sorted({key for _, key in PAPER_REFERENCES.values()} | {FAMILY_SOURCE[1]})
