"""Notebook panels: the Data Distiller inside Jupyter (JupyterLab, Notebook 7, Voila).

>>> import ctanb
>>> app = ctanb.App()   # or ctanb.App("http://127.0.0.1:8100/tap")
>>> app.tabs.titles
('Search', 'Analysis', 'Provenance', 'Jobs', 'Products')

Panels are thin: every button calls one public method, the state is in
traitlets, the front end sends named commands, and a :class:`~ctanb.CtanbError`
is shown in the panel with its details. Panels can be used alone:
:class:`SearchPanel`, :class:`ResultsTable`, :class:`SkyView`,
:class:`AnalysisPanel`, :class:`ProvenancePanel`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["AnalysisPanel", "App", "ProvenancePanel", "ResultsTable", "SearchPanel", "SkyView"]

_LAZY = {
    "App": "ctanb.widgets.app",
    "SearchPanel": "ctanb.widgets.search",
    "ResultsTable": "ctanb.widgets.results",
    "SkyView": "ctanb.widgets.sky",
    "AnalysisPanel": "ctanb.widgets.analysis",
    "ProvenancePanel": "ctanb.widgets.provenance",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ctanb.widgets' has no attribute {name!r}")
