"""Pure domain core of Prefloop: standard library and numpy only, no web, no SQL.

* ``errors``: domain errors (no HTTP codes) and the ``Problems`` collector.
* ``importing``: import files read and checked (SPEC §3), every format.
* ``names``: what a user name may look like; the ``ext:`` prefix of imported labelers.
* ``rankings``: tiers, validation, pairwise outcomes; ratings validation.
* ``consensus``: Bradley–Terry / Borda consensus of one prompt's rankings.
* ``export_filters``, ``pairs``, ``jsonl``: export rows (SPEC §4, §5) and their bytes;
  ``pair_shapes``: the same bytes for a whole project, planned once per judgment pattern.
* ``agreement``: the SPEC §6 coefficients on plain Python data.
* ``outcomes``, ``figures``, ``labeler_figures``: project, prompt and labeler figures;
  ``outcome_columns``: the outcome table from a query's columns (no record per judgment).
* ``project_summary``: the project's figures as the API and export manifests give them;
  ``json_cache``: rankings parsed once per distinct JSON text.
* ``assignment``: the adaptive overlap policy.
"""
