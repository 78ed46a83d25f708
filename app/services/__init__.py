"""Use cases, grouped by area of the product.

* ``accounts``: users, login, API tokens, the access policy, hashing.
* ``projects``, ``project_settings``: projects, members, their labeling settings.
* ``importing``: importing prompt files (the checks live in ``app.domain.importing``).
* ``labeling``: leases, judgments, the labeler page, project progress.
* ``agreement``: agreement figures and the disagreement pages.
* ``exports``: preference-pair exports, streamed to disk.
* ``runs``: the training-run queue, its views, the next round, model comparison.
* ``demo``: the demo projects.

The rule: only services commit, and each public function is one unit of work: it commits
(or rolls back) once, and what it calls below it (the ORM, the domain, the private
helpers of its package) only reads, flushes or computes. A read-only function ends its
transaction with a rollback. Web handlers and the CLI call one service function per
request or command and never commit themselves.

One documented exception: ``demo.seed_demo`` composes whole use cases (users, projects,
imports, an export), each committing on its own. Every step is idempotent (an existing
user or project is reused, a re-import skips known prompt ids), so a demo interrupted
half-way is completed by running it again.
"""
