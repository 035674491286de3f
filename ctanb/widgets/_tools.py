"""What TOPCAT and Distiller users expect beside the results: export the table,
download the selected datasets with progress, and log in with a token.

Files go to a folder the notebook's file browser shows (:func:`products_dir`:
``CTANB_PRODUCTS``, else ``ctanb-products`` next to the notebook), never only to
a temporary folder; each action says where.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from .._errors import CtanbError
from ._action import ActionButton
from ._async import status_html
from ._errors import ErrorDisplay, guarded

__all__ = ["LoginBox", "ResultsTools", "download_records", "hub_identity"]

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
        return download_records(self.app.search.archive, list(selection), folder,
                                self.progress, self.status)  # fmt: skip


def download_records(archive: Any, records: list, folder: Path, progress: w.FloatProgress,
                     status: w.HTML) -> list[Path]:  # fmt: skip
    """Download *records* (and their IRFs) into *folder*, one by one, with *progress*;
    *status* says which and, at the end, where the files are (or where it stopped)."""
    files: list[Path] = []
    progress.value, progress.bar_style = 0.0, ""
    for done, record in enumerate(records, start=1):
        status.value = status_html(f"downloading {done}/{len(records)}: {record['obs_id']} ...")
        try:
            files += archive.download(record, folder, calibration=True)
        except CtanbError:
            progress.bar_style = "danger"
            status.value = status_html(
                f"download stopped at {done}/{len(records)}; "
                f"{len(files)} file(s) are in {_shown_path(folder)}",
                "error",
            )
            raise
        progress.value = done / len(records)
    size = sum(f.stat().st_size for f in files) / 1e6
    progress.bar_style = "success"
    status.value = status_html(
        f"{len(files)} file(s), {size:.1f} MB, in {_shown_path(folder)}", "ok"
    )
    return [folder / f.name for f in files]


def hub_identity(env: dict | None = None) -> dict[str, str]:
    """Who the user is on JupyterHub and what archive access the hub gave the server.

    ``{"user", "group", "token"}``: ``JUPYTERHUB_USER``, ``CTANB_ARCHIVE_GROUP`` and
    whether ``CTANB_TOKEN`` is set ("yes"/""); the secret itself is never returned.
    """
    env = os.environ if env is None else env
    return {"user": env.get("JUPYTERHUB_USER", ""), "group": env.get("CTANB_ARCHIVE_GROUP", ""),
            "token": "yes" if env.get("CTANB_TOKEN") else ""}  # fmt: skip


class LoginBox(w.HBox):
    """A token field: proprietary data need a token of the right group.

    On JupyterHub the user field is filled from the hub identity and the token the
    hub gave this server (``CTANB_TOKEN``) is already in use; the field is for another
    token. The token never goes into the field (a saved widget state would keep it).
    """

    error = ""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self.error_display = ErrorDisplay()
        identity = hub_identity()
        self.user_text = w.Text(description="User", value=identity["user"],
                                placeholder="(not on JupyterHub)", disabled=True,
                                layout=w.Layout(width="220px"))  # fmt: skip
        self.token_text = w.Password(description="Token", placeholder="for proprietary data",
                                     layout=w.Layout(width="300px"))  # fmt: skip
        if identity["token"]:
            self.token_text.placeholder = (
                f"JupyterHub's token in use{' (group ' + identity['group'] + ')' if identity['group'] else ''}"
                "; paste another to switch"
            )
        self.login_button = ActionButton(description="Log in", icon="sign-in",
                                         inputs=[self.token_text])  # fmt: skip
        self.status = w.HTML()
        self.login_button.on_click(lambda _: guarded(self, self.app.login))
        children = [self.token_text, self.login_button, self.status, self.error_display]
        if identity["user"]:
            children.insert(0, self.user_text)
        super().__init__(children=children, **kwargs)

    def show_identity(self) -> None:
        """Say what the environment gives: the hub identity and its archive token, if any."""
        identity = hub_identity()
        if identity["user"] and identity["token"]:
            group = f", archive group {identity['group']}" if identity["group"] else ""
            self.show(True, f"as {identity['user']} through JupyterHub{group}")
        elif identity["user"]:
            self.status.value = status_html(
                f"signed in to JupyterHub as {identity['user']}; the hub gave no archive "
                "token (your groups hold no proprietary data): public data only, or paste a token"
            )
        else:
            self.show(bool(identity["token"]), "from your environment")

    def show(self, logged_in: bool, how: str = "") -> None:
        """Say whether requests carry a token (never showing the token)."""
        if logged_in:
            text = "logged in" + (f" ({how})" if how else "") + ": proprietary data you may see"
            self.status.value = status_html(text, "ok")
        else:
            self.status.value = status_html("not logged in: public data only")
