"""The database session one request or one command works in.

Web handlers (``app.web.deps.get_db``) and the CLI open one per request or command and
hand it to the service functions they call; the services commit or roll back (see
``app.services``), and the opener only closes it, whatever happened. ``DbSession`` is the
type those callers name, so that nothing above the services imports SQLAlchemy.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

DbSession = Session

DatabaseUnavailable = OperationalError
"""The database could not be reached, or dropped the connection mid-request (a restart, a
crash, a network fault): the web answers 503 with ``Retry-After`` rather than a 500."""
