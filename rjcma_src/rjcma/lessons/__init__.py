"""What the book's notebooks share, next to the chapter it serves.

:mod:`~rjcma.lessons.common` holds the set-up every notebook starts with, tables, glue and the readers of result
folders; :mod:`~rjcma.lessons.building` builds what a chapter needs when it is missing (corpus, store, trained runs)
through the package's own entry points; :mod:`~rjcma.lessons.checks` is how an exercise's answer is judged. Then one
module per chapter (or group of chapters) holds that chapter's helpers and the checks of its exercises.

Apps layer: imports anything in the package; nothing in the package imports it.
"""
