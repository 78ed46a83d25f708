"""Labeling: leases, judgments and what the labeler sees.

* ``assignment``: the next task of a labeler (leases, the adaptive overlap, gold prompts).
* ``checks``: the judgment body and its checks against the project.
* ``judgments``: recording a judgment or a skip.
* ``page``: the labeler page's view and the labeler's own progress.
* ``progress``: a project's progress (prompts by state, judgments per hour, per labeler).
"""
