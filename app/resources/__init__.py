"""Where the app finds the files it reads at run time: templates, static files, the Alembic
migrations and the demo data. The one place that knows; nothing else builds such a path.

Installed (a wheel, ``pip install .``), ``templates/``, ``static/`` and ``migrations/`` are
package data of this package (``setup.py`` maps the top-level folders to
``app/resources/<name>/``); in a source checkout they are those top-level folders. The demo
data is package data of ``app`` (``app/demo/``) either way.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

FOLDERS = ("templates", "static", "migrations")
"""The top-level folders of the checkout that the wheel carries under ``app/resources/``."""


def _as_path(traversable: object) -> Path:
    """A folder of an installed package as a real path (Jinja, Starlette and Alembic need one;
    a wheel is always unpacked, so it is one)."""
    return Path(str(traversable))


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of ``FOLDERS``): the installed package data, else the
    checkout's top-level folder."""
    if name not in FOLDERS:
        raise ValueError(f"unknown resource folder {name!r}; expected one of {FOLDERS}")
    packaged = _as_path(resources.files(__name__) / name)
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"{name}/ is neither in the installed package ({packaged}) nor in a source checkout "
        f"({checkout}): reinstall prefloop"
    )


def demo_file(name: str) -> Path:
    """A file of the demo data set (``app/demo/``, package data of ``app``)."""
    path = _as_path(resources.files("app") / "demo" / name)
    if not path.is_file():
        raise FileNotFoundError(f"demo data {name} is missing from {path.parent}: reinstall")
    return path
