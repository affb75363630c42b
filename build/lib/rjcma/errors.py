"""The one exception type users see: a single line naming the file and what to do."""

from __future__ import annotations


class RjcmaError(Exception):
    """An expected failure (bad input, missing file or model). The CLI prints it as one line and exits 2."""

    exit_code = 2


class MissingAssetError(RjcmaError):
    """A weight file, model directory or optional package is missing; the message says how to get it."""
