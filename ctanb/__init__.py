"""ctanb: a Jupyter-centred analysis environment for Cherenkov-telescope gamma-ray data.

Search an ObsCore archive (embedded or GAVO DaCHS), look at the results on the sky,
analyse them with gammapy and keep the provenance of every product.

``import ctanb`` is cheap: gammapy, pyvo and the widgets load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader as _lazy

from ._errors import (
    AdqlError,
    AnalysisError,
    AuthError,
    ConfigError,
    CoverageError,
    CriteriaError,
    CtanbError,
    DownloadError,
    IngestError,
    JobError,
    NotFoundError,
    ProvenanceError,
    QueryError,
    ResolveError,
    ServiceError,
    TimeCoverageError,
)

__version__ = "0.1.0"

__all__ = [
    "AdqlError",
    "AnalysisError",
    "App",
    "Archive",
    "AuthError",
    "ConfigError",
    "CoverageError",
    "Criteria",
    "CriteriaError",
    "CtanbError",
    "DownloadError",
    "IngestError",
    "JobError",
    "NotFoundError",
    "ProvenanceError",
    "QueryError",
    "ResolveError",
    "Results",
    "ServiceError",
    "TimeCoverageError",
    "__version__",
    "connect",
]

# Public names that live in heavier modules, imported on first use (lazy-loader, PEP 562):
# they are in __all__, so ``from ctanb import *`` imports them (and ipywidgets, for App).
__getattr__, _lazy_dir, _lazy_all = _lazy.attach(
    __name__,
    submod_attrs={"client": ["Archive", "Criteria", "Results", "connect"], "widgets": ["App"]},
)

if TYPE_CHECKING:  # pragma: no cover
    from .client import Archive, Criteria, Results, connect
    from .widgets import App


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
