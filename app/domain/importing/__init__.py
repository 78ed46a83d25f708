"""Reading and checking import files (SPEC §3), without a database.

* ``reader``: the lines of a file (gzip, BOM, CRLF, bad UTF-8, overlong lines).
* ``rows``: one prompt record checked field by field into an :class:`ImportRow`.
* ``formats``: the JSON Lines, CSV and preference-pair formats, each a stream of rows.
* ``file``: a whole file's records: repeats, the cap on problems, the refusal.

The service (``app.services.importing``) only writes the valid rows and owns the
transaction.
"""
