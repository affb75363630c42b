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
    """Wrap each inline math node with the punctuation that touches it; the number of nodes wrapped.

    Children are found by identity: docutils' Text nodes are strings, so ``parent.index`` would take the first
    equal text (", " after a bold word) for the one beside the math."""
    done = 0
    for math in list(doctree.findall(nodes.math)):
        parent = math.parent
        if parent is None or (isinstance(parent, nodes.inline) and CLASS in parent["classes"]):
            continue
        i = _position(parent, math)
        after = parent.children[i + 1] if i + 1 < len(parent.children) else None
        before = parent.children[i - 1] if i > 0 else None
        m_after = AFTER.match(after.astext()) if isinstance(after, nodes.Text) else None
        m_before = BEFORE.search(before.astext()) if isinstance(before, nodes.Text) else None
        if not (m_after or m_before):
            continue
        first, last = (i - 1 if m_before else i), (i + 1 if m_after else i)
        del parent.children[first:last + 1]
        parts: list[nodes.Node] = []
        box = nodes.inline(classes=[CLASS])
        if m_before:
            if m_before.start():
                parts.append(nodes.Text(before.astext()[:m_before.start()]))
            box += nodes.Text(m_before.group())
        box += math
        parts.append(box)
        if m_after:
            box += nodes.Text(m_after.group())
            if after.astext()[m_after.end():]:
                parts.append(nodes.Text(after.astext()[m_after.end():]))
        for k, node in enumerate(parts):
            parent.insert(first + k, node)
        done += 1
    return done


def _position(parent: nodes.Element, child: nodes.Node) -> int:
    """The index of ``child`` among ``parent``'s children, by identity."""
    return next(k for k, c in enumerate(parent.children) if c is child)


class BindMathPunctuation(SphinxTransform):
    default_priority = 700  # after the parsers (MyST, myst-nb) made the math nodes

    def apply(self, **kwargs) -> None:
        bind_math_punctuation(self.document)


def setup(app: Sphinx) -> dict:
    app.add_transform(BindMathPunctuation)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
