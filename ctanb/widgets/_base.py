"""Shared plumbing of the anywidget panels: local ES modules and named commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

#: Built ES modules and style sheets (widgets/build.py writes them here).
STATIC = Path(__file__).resolve().parent.parent / "static"


def static_file(name: str) -> Path:
    """A file of ctanb/static (built by ``widgets/build.py``)."""
    return STATIC / name


class CommandMixin:
    """Dispatch the front end's named messages ``{"command": name, ...}`` to public methods.

    Subclasses list the allowed names in ``_commands`` (name -> method name); the
    remaining keys of the message are the method's keyword arguments. Errors go
    to the widget's error display through :func:`~ctanb.widgets._errors.guarded`.
    """

    _commands: ClassVar[dict[str, str]] = {}

    def _handle_command(self, _widget: Any, content: Any, buffers: list) -> None:
        from ._errors import guarded

        if not isinstance(content, dict) or "command" not in content:
            return
        args = {k: v for k, v in content.items() if k != "command"}
        name = self._commands.get(content["command"])
        if name is None:
            return
        method: Callable[..., Any] = getattr(self, name)
        guarded(self, method, **args)
