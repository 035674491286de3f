"""ProductsList: the files in the products folder, newest first, each a link to open it.

The products folder (:func:`~ctanb.widgets.analysis.products_dir`) is next to the
notebook, so a link relative to the notebook's folder opens the file in JupyterLab
(``/lab/tree/<notebook folder>/ctanb-products/...``) and in Notebook 7 alike.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import ipywidgets as w

from ._errors import ErrorDisplay, guarded

__all__ = ["ProductsList"]

#: At most this many files are listed (the newest).
MAX_LISTED = 200


class ProductsList(w.VBox):
    """The products folder's files with links, refreshed after each action that writes.

    Parameters
    ----------
    folder : path, optional
        Default: :func:`~ctanb.widgets.analysis.products_dir` at refresh time.
    """

    error = ""

    def __init__(self, folder: str | Path | None = None, **kwargs: Any) -> None:
        self.folder = Path(folder) if folder else None
        self.error_display = ErrorDisplay()
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       layout=w.Layout(width="auto"))  # fmt: skip
        self.listing = w.HTML()
        self.refresh_button.on_click(lambda _: guarded(self, self.refresh))
        super().__init__(children=[self.refresh_button, self.listing, self.error_display],
                         **kwargs)  # fmt: skip
        self.add_class("ctanb-products")

    def files(self) -> list[Path]:
        """The files in the folder (recursively), newest first."""
        folder = self._folder()
        found = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return found[:MAX_LISTED]

    def refresh(self) -> list[Path]:
        """List the folder again; returns the files listed."""
        from ._tools import _shown_path

        folder = self._folder()
        files = self.files()
        if not files:
            self.listing.value = (f"<i>No products yet in {html.escape(_shown_path(folder))}: "
                                  "exports, downloads and analysis results go there.</i>")  # fmt: skip
            return files
        rows = []
        for path in files:
            shown = _shown_path(path)
            stat = path.stat()
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime))
            # Relative to the notebook's folder: the browser resolves it next to the
            # notebook's own URL, which is where the file browser shows it.
            link = (f"<a href='{html.escape(quote(shown))}' target='_blank' "
                    f"class='ctanb-product-link'>{html.escape(shown)}</a>"
                    if not Path(shown).is_absolute() else html.escape(shown))  # fmt: skip
            rows.append(f"<tr><td>{link}</td><td>{stat.st_size / 1e6:.2f} MB</td>"
                        f"<td>{when}</td></tr>")  # fmt: skip
        self.listing.value = (
            f"<div>{len(files)} file(s) in <code>{html.escape(_shown_path(folder))}</code></div>"
            "<table class='ctanb-products-table'><tr><th>File</th><th>Size</th>"
            f"<th>Written</th></tr>{''.join(rows)}</table>"
        )
        return files

    def _folder(self) -> Path:
        from .analysis import products_dir

        return self.folder if self.folder is not None else products_dir()
