"""Training runs (SPEC §7, §10), the app's side of the queue that ``prefloop worker`` serves.

* ``queue``: create (validated), cancel, retry, get and list runs — the moves an admin makes.
* ``view``: what the API and the dashboard show of a run (metrics, samples, artifact files,
  the human ceiling) and what the start form offers.
* ``next_round``: a generate run's completions become a labeling project, and its labels
  compare the trained policy with its base (the figures: ``app.domain.model_compare``).

Kinds, statuses, their moves and the limits come from ``training.schema``.
"""
