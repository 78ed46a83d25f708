"""What pyproject.toml cannot say: the top-level ``templates/``, ``static/`` and ``migrations/``
folders ship in the wheel as package data under ``app/resources/<name>/``, where
``app.resources.resource_dir`` finds them once installed (in a checkout it finds the
top-level folders). Everything else about the build is in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

FOLDERS = ("templates", "static", "migrations")  # as app.resources.FOLDERS


def mapped_folders() -> dict[str, str]:
    """Each folder and subfolder as a data package: ``app.resources.static.css`` is static/css."""
    folders = [Path(name) for name in FOLDERS if Path(name).is_dir()]  # not in Docker's first layer
    folders += [p for name in FOLDERS for p in sorted(Path(name).rglob("*")) if p.is_dir()]
    return {
        "app.resources." + ".".join(folder.parts): folder.as_posix()
        for folder in folders
        if folder.name != "__pycache__"
    }


MAPPED = mapped_folders()
DATA = [
    package
    for package in ["app.demo", "training.accelerate", *MAPPED]
    if Path(MAPPED.get(package, package.replace(".", "/"))).is_dir()
]

setup(
    packages=find_packages(include=["app*", "training*"]) + DATA,
    package_dir=MAPPED,
    package_data={package: ["*"] for package in DATA},
    exclude_package_data={"": ["*.pyc"]},
)
