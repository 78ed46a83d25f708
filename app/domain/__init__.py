"""Pure domain core of Prefloop: standard library and numpy only, no web, no SQL.

* ``errors``: domain errors (no HTTP codes).
* ``rankings``: tiers, validation, pairwise outcomes; ratings validation.
* ``consensus``: Bradley–Terry / Borda consensus of one prompt's rankings.
* ``export_filters``, ``pairs``, ``jsonl``: export rows (SPEC §4, §5) and their bytes.
* ``agreement``: the SPEC §6 coefficients on plain Python data.
* ``outcomes``, ``figures``, ``labeler_figures``: project, prompt and labeler figures.
* ``assignment``: the adaptive overlap policy.
"""
