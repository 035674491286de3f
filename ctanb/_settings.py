"""Where ctanb finds its data and keeps its state.

Every path ctanb uses comes from here, so that one environment variable changes
it everywhere:

``CTANB_DATA``
    The folder of public DL3 releases (``hess-dl3-dr1``, ``cta-1dc``, ``cta-caldb``,
    ``magic``, ``catalogs``). Default: ``../shared/data`` beside a source checkout.
``CTANB_HOME``
    Per-user state: the embedded archive database, caches, query history,
    provenance store, jobs. Default: ``~/.ctanb``.
``CTANB_TAP_URL``
    The archive that :func:`ctanb.connect` uses when no URL is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._errors import ConfigError

__all__ = [
    "DATA_RELEASES",
    "data_dir",
    "home_dir",
    "project_root",
    "release_dir",
]

#: The public releases ctanb knows, with the folder name under ``CTANB_DATA``,
#: where to get them, and how (gammapy's own download tooling fetches them all).
DATA_RELEASES: dict[str, dict[str, str]] = {
    "hess-dl3-dr1": {
        "title": "H.E.S.S. DL3 DR1 (105 runs)",
        "url": "https://zenodo.org/record/1421099",
        "gammapy": "hess-dl3-dr1",
    },
    "cta-1dc": {
        "title": "CTA first data challenge, 4 GPS runs and the South_z20_50h IRF",
        "url": "https://github.com/gammapy/gammapy-data (folder cta-1dc)",
        "gammapy": "cta-1dc",
    },
    "cta-caldb": {
        "title": "CTAO prod5 v0.1 IRFs (North and South)",
        "url": "https://zenodo.org/record/5499840",
        "gammapy": "cta-caldb",
    },
    "magic": {
        "title": "MAGIC Crab runs with RAD_MAX point-like IRFs",
        "url": "https://github.com/gammapy/gammapy-data (folder magic/rad_max)",
        "gammapy": "magic",
    },
    "catalogs": {
        "title": "Fermi-LAT 3FGL/3FHL, H.E.S.S. HGPS, gamma-cat",
        "url": "https://github.com/gammapy/gammapy-data (folder catalogs)",
        "gammapy": "catalogs",
    },
}


def project_root() -> Path | None:
    """The source checkout that contains this package, or None when installed."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def data_dir(*, must_exist: bool = False) -> Path:
    """The folder of public DL3 releases (``CTANB_DATA``).

    Parameters
    ----------
    must_exist : bool
        Raise :class:`~ctanb.ConfigError` with download instructions when the
        folder does not exist.
    """
    env = os.environ.get("CTANB_DATA")
    if env:
        path = Path(env).expanduser()
    elif (root := project_root()) is not None:
        path = root.parent / "shared" / "data"
    else:
        path = home_dir() / "data"
    if must_exist and not path.is_dir():
        raise ConfigError(_missing_message(path, None))
    return path


def release_dir(name: str, *, must_exist: bool = True) -> Path:
    """The folder of one release under :func:`data_dir`, e.g. ``"hess-dl3-dr1"``."""
    if name not in DATA_RELEASES:
        raise ConfigError(f"unknown data release {name!r}; known: {', '.join(DATA_RELEASES)}")
    path = data_dir() / name
    if must_exist and not path.is_dir():
        raise ConfigError(_missing_message(path, name))
    return path


def home_dir() -> Path:
    """Per-user state folder (``CTANB_HOME``, default ``~/.ctanb``), created on demand."""
    path = Path(os.environ.get("CTANB_HOME") or Path.home() / ".ctanb").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing_message(path: Path, name: str | None) -> str:
    names = [name] if name else list(DATA_RELEASES)
    lines = [
        f"The DL3 data folder {path} does not exist.",
        "Set CTANB_DATA to a folder holding the public releases, or fetch them with",
        f"  gammapy download datasets --out {path}",
        "(gammapy's own download tooling). Releases used by ctanb:",
    ]
    lines += [f"  {n}: {DATA_RELEASES[n]['title']} <{DATA_RELEASES[n]['url']}>" for n in names]
    return "\n".join(lines)
