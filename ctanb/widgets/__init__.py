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

import lazy_loader as _lazy

__all__ = ["AnalysisPanel", "App", "ProvenancePanel", "ResultsTable", "SearchPanel", "SkyView"]

# Each panel's module is imported on first use (lazy-loader): ipywidgets loads only then.
__getattr__, __dir__, _lazy_all = _lazy.attach(
    __name__,
    submod_attrs={
        "app": ["App"],
        "search": ["SearchPanel"],
        "results": ["ResultsTable"],
        "sky": ["SkyView"],
        "analysis": ["AnalysisPanel"],
        "provenance": ["ProvenancePanel"],
    },
)
