"""What TOPCAT and Distiller users expect beside the results: export the table,
download the selected datasets with progress, and log in with a token.

Files go to a folder the notebook's file browser shows (:func:`products_dir`:
``CTANB_PRODUCTS``, else ``ctanb-products`` next to the notebook), never only to
a temporary folder; each action says where.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from .._errors import CtanbError
from ._action import ActionButton
from ._async import status_html
from ._errors import ErrorDisplay, guarded

__all__ = ["LoginBox", "ResultsTools"]

_SUFFIX = {"votable": "vot", "fits": "fits", "csv": "csv", "ecsv": "ecsv"}


def _shown_path(path: Path) -> str:
    """The path as the notebook's file browser shows it (relative when inside cwd)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class ResultsTools(w.VBox):
    """Export and download buttons for an :class:`~ctanb.widgets.App`'s results."""

    error = ""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self.error_display = ErrorDisplay()
        self.format_box = w.Dropdown(options=[("VOTable", "votable"), ("FITS", "fits"),
                                              ("CSV", "csv"), ("ECSV (CSV with units)", "ecsv")],
                                     value="votable", layout=w.Layout(width="190px"))  # fmt: skip
        self.selected_box = w.Checkbox(description="checked rows only", indent=False,
                                       layout=w.Layout(width="150px"))  # fmt: skip
        self.export_button = w.Button(description="Export table", icon="file-export")
        self.download_button = w.Button(description="Download checked datasets",
                                        icon="download", layout=w.Layout(width="auto"))  # fmt: skip
        self.progress = w.FloatProgress(min=0, max=1, layout=w.Layout(width="160px"))
        self.status = w.HTML()
        self.export_button.on_click(lambda _: guarded(self, self.app.export))
        self.download_button.on_click(lambda _: guarded(self, self.app.download_selected))
        row = [self.format_box, self.selected_box, self.export_button, self.download_button,
               self.progress]  # fmt: skip
        super().__init__(children=[w.HBox(row), self.status, self.error_display], **kwargs)

    def export(self, path: str | Path | None = None, format: str | None = None) -> Path:
        """Write the table; the format comes from *format*, else *path*'s suffix, else the
        panel's choice (a new file in the products folder when *path* is None)."""
        from .analysis import products_dir

        if path is None:  # the format chosen in the panel, a new file in the products folder
            format = format or self.format_box.value
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = products_dir() / f"results-{stamp}.{_SUFFIX[format]}"
        written = self.app.table.export(path, format, selected=self.selected_box.value)
        rows = len(self.app.table.selected) if self.selected_box.value else self.app.table.row_count
        self.status.value = status_html(f"{rows} row(s) written to {_shown_path(written)}", "ok")
        return written

    def download(self, dest: str | Path | None = None) -> list[Path]:
        """Download the checked datasets (and their IRFs) with progress; returns the files."""
        from .analysis import products_dir

        selection = self.app.selected_results()
        folder = Path(dest) if dest else products_dir() / "downloads"
        archive = self.app.search.archive
        files: list[Path] = []
        self.progress.value, self.progress.bar_style = 0.0, ""
        for done, record in enumerate(selection, start=1):
            self.status.value = status_html(
                f"downloading {done}/{len(selection)}: {record['obs_id']} ..."
            )
            try:
                files += archive.download(record, folder, calibration=True)
            except CtanbError:
                self.progress.bar_style = "danger"
                self.status.value = status_html(
                    f"download stopped at {done}/{len(selection)}; "
                    f"{len(files)} file(s) are in {_shown_path(folder)}",
                    "error",
                )
                raise
            self.progress.value = done / len(selection)
        size = sum(f.stat().st_size for f in files) / 1e6
        self.progress.bar_style = "success"
        self.status.value = status_html(
            f"{len(files)} file(s), {size:.1f} MB, in {_shown_path(folder)}", "ok"
        )
        return [folder / f.name for f in files]


class LoginBox(w.HBox):
    """A token field: proprietary data need a token of the right group."""

    error = ""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self.error_display = ErrorDisplay()
        self.token_text = w.Password(description="Token", placeholder="for proprietary data",
                                     layout=w.Layout(width="300px"))  # fmt: skip
        self.login_button = ActionButton(description="Log in", icon="sign-in",
                                         inputs=[self.token_text])  # fmt: skip
        self.status = w.HTML()
        self.login_button.on_click(lambda _: guarded(self, self.app.login))
        super().__init__(children=[self.token_text, self.login_button, self.status,
                                   self.error_display], **kwargs)  # fmt: skip

    def show(self, logged_in: bool, how: str = "") -> None:
        """Say whether requests carry a token (never showing the token)."""
        if logged_in:
            text = "logged in" + (f" ({how})" if how else "") + ": proprietary data you may see"
            self.status.value = status_html(text, "ok")
        else:
            self.status.value = status_html("not logged in: public data only")
