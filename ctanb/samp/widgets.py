"""Deprecated location of the SAMP controls: use :mod:`ctanb.widgets.samp`.

The notebook widgets live in :mod:`ctanb.widgets`; this module only forwards the
old names (with a :class:`DeprecationWarning`) so that existing notebooks keep working.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__: list[str] = []  # nothing new here

#: The names that moved to ctanb.widgets.samp.
_MOVED = ("ALL_CLIENTS", "SampControls")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"ctanb.samp.widgets.{name} moved to ctanb.widgets.samp.{name}; "
            "import it from there (the old place will be removed)",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..widgets import samp  # imported on use: samp sits below the widgets layer

        return getattr(samp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
