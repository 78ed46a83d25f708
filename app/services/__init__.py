"""Use cases. Each public function owns one transaction: it commits (or rolls back) and
nothing below it does; repositories and helpers only flush."""
