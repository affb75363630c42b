"""A Sphinx extension (listed in ``_config.yml``) that keeps inline math and the punctuation touching it on one line.

MathJax puts each inline equation in an inline block, and Chromium may break the line between that block and the
text after it, so a reader at 1280 px saw lines of the book start with the comma of "step $t$, weighs" or the
parenthesis of "($d \\times K$), then". Here every inline math node whose neighbouring text touches it with
punctuation (a closing mark after it, an opening bracket before it) goes into an inline node of class ``nowrap``
together with those characters; ``_static/rjcma.css`` keeps such a node on one line. The page's text is unchanged.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform

AFTER = re.compile(r"^[,.;:!?)\]’”'\"]+")  # closing punctuation right after the math
BEFORE = re.compile(r"[(\[‘“]+$")  # opening brackets right before it
CLASS = "nowrap"


def bind_math_punctuation(doctree: nodes.Node) -> int:
    """Wrap each inline math node with the punctuation that touches it; the number of nodes wrapped."""
    done = 0
    for math in list(doctree.findall(nodes.math)):
        parent = math.parent
        if parent is None or (isinstance(parent, nodes.inline) and CLASS in parent["classes"]):
            continue
        i = parent.index(math)
        after = parent[i + 1] if i + 1 < len(parent) else None
        before = parent[i - 1] if i > 0 else None
        m_after = AFTER.match(after.astext()) if isinstance(after, nodes.Text) else None
        m_before = BEFORE.search(before.astext()) if isinstance(before, nodes.Text) else None
        if not (m_after or m_before):
            continue
        box = nodes.inline(classes=[CLASS])
        if m_before:
            box += nodes.Text(m_before.group())
            _keep(parent, before, before.astext()[:m_before.start()])
        parent.replace(math, box)
        box += math
        if m_after:
            box += nodes.Text(m_after.group())
            _keep(parent, after, after.astext()[m_after.end():])
        done += 1
    return done


def _keep(parent: nodes.Element, node: nodes.Text, rest: str) -> None:
    """Replace text ``node`` of ``parent`` by ``rest``, or remove it when nothing is left."""
    if rest:
        parent.replace(node, nodes.Text(rest))
    else:
        parent.remove(node)


class BindMathPunctuation(SphinxTransform):
    default_priority = 700  # after the parsers (MyST, myst-nb) made the math nodes

    def apply(self, **kwargs) -> None:
        bind_math_punctuation(self.document)


def setup(app: Sphinx) -> dict:
    app.add_transform(BindMathPunctuation)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
