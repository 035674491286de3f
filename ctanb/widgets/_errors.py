"""How a panel shows an error: a clear message, details (type, fields, traceback) on demand.

Every button handler of a panel goes through :func:`guarded`, so a
:class:`~ctanb.CtanbError` ends up in the panel (never only in the browser
console or the server log) and the panel's ``error`` trait holds its message.
"""

from __future__ import annotations

import html
import logging
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .._errors import CtanbError

__all__ = ["ErrorDisplay", "guarded"]

_log = logging.getLogger("ctanb.widgets")

#: Attributes of the CtanbError subclasses worth showing (QueryError.position, ...).
_DETAIL_FIELDS = ("field", "name", "suggestions", "query", "url", "status", "path")


class ErrorDisplay(w.HTML):
    """An HTML area showing the last error of a panel; empty when there is none."""

    def show(self, exc: BaseException) -> str:
        """Show *exc*; returns the message shown."""
        if isinstance(exc, CtanbError):
            from ._messages import panel_message

            message = panel_message(exc)
            title = type(exc).__name__
        else:  # a bug, not bad input: say so, keep the traceback in the details
            message = f"unexpected {type(exc).__name__}: {exc}"
            title = "Internal error (please report it)"
            _log.exception("unexpected error in a ctanb panel", exc_info=exc)
        details = [f"{title}"]
        for key in _DETAIL_FIELDS:
            value = getattr(exc, key, None)
            if value not in (None, "", []):
                details.append(f"{key}: {value}")
        if not isinstance(exc, CtanbError):  # a bug: the traceback helps whoever fixes it
            details.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        # Multi-line messages (an ADQL line with a caret under the problem) keep their
        # layout in a monospace block.
        if "\n" in message:
            shown = (
                "<pre class='ctanb-error-text' style='white-space:pre-wrap;margin:0;"
                f"font-weight:bold'>{html.escape(message)}</pre>"
            )
        else:
            shown = f"<b>{html.escape(message)}</b>"
        self.value = (
            '<div class="ctanb-error" role="alert" style="color:#b71c1c;border:1px solid #e57373;'
            f'padding:4px 8px;border-radius:4px;background:#ffebee">{shown}'
            "<details><summary>Details</summary>"
            f"<pre style='white-space:pre-wrap;font-size:11px'>{html.escape(chr(10).join(details))}"
            "</pre></details></div>"
        )
        return message

    def clear(self) -> None:
        """Remove the message."""
        self.value = ""


def guarded(panel: Any, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``action(*args, **kwargs)`` for a button; errors go to ``panel.error_display``.

    The panel's ``error`` trait gets the message (``""`` after a success), so a
    test or a notebook reads what the user saw.
    """
    try:
        result = action(*args, **kwargs)
    except Exception as exc:  # shown in the panel, never swallowed
        panel.error = panel.error_display.show(exc)
        return None
    panel.error = ""
    panel.error_display.clear()
    return result
