"""`rjcma book`: run every notebook with papermill, then build the Jupyter Book (the book's chapter *Running this
book*).

The notebooks in ``notebooks/`` are sources without outputs. Each has one cell tagged ``parameters`` whose names
are config fields (:mod:`rjcma.book.parameters`); :mod:`rjcma.book.execute` injects the profile's value of each
field, executes the notebook with the repository root as working directory into ``_build/executed/notebooks/`` and
stops at the first failure, naming the notebook and the cell. :mod:`rjcma.book.build` then assembles a build tree in
``_build/src/`` (``_config.yml``, ``_toc.yml``, ``book/``, the executed notebooks and a local copy of MathJax 3) and
runs ``jupyter-book build`` with warnings as errors; the HTML lands in ``_build/html/``. :mod:`rjcma.book.paths`
knows where things are, :mod:`rjcma.book.tiny` makes the smoke book of ``rjcma book --tiny`` and
:mod:`rjcma.book.lab` starts JupyterLab.

The command line is :mod:`rjcma.cli.book` (``rjcma book``, ``rjcma lab``).
"""
