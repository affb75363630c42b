"""The book's figures, one module per chapter (or group of chapters); ``rjcma predict`` draws its PNG with
:mod:`rjcma.figures.inference`.

Every function takes arrays or results and returns a :class:`matplotlib.figure.Figure` with a title, labelled axes
and its legends outside the data. Figures are built without ``pyplot`` (:mod:`rjcma.figures.style`), so drawing one
never selects or switches a backend: a notebook shows the figure it gets back, and a headless process renders it
with Agg.
"""
