"""The basket: datasets collected across searches, then downloaded, exported or sent at once
(what TOPCAT and Distiller users expect beside the results, issue 15 item 7).

A dataset is kept once whatever search found it (keyed by ``obs_publisher_did``, else
collection and ``obs_id``), as the :class:`~ctanb.client.Record` of its search, so a
download uses the archive and DataLink of the search that found it.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from .._errors import CtanbError
from ._async import status_html
from ._errors import ErrorDisplay, guarded
from ._tools import _SUFFIX, _shown_path, download_records
from .results import write_table

__all__ = ["Basket"]


def _key(record: Any) -> str:
    keys = record.keys()
    if "obs_publisher_did" in keys and record["obs_publisher_did"]:
        return str(record["obs_publisher_did"])
    collection = record["obs_collection"] if "obs_collection" in keys else ""
    return f"{collection}/{record['obs_id']}"


class Basket(w.VBox):
    """Datasets kept across searches (``Add checked to basket``), handled together.

    Parameters
    ----------
    app : App
        Gives the checked rows (``app.selected_results()``), the export format and SAMP.

    Attributes
    ----------
    records : dict
        Key -> :class:`~ctanb.client.Record`, in the order they were added.
    """

    error = ""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self.records: dict[str, Any] = {}
        self.error_display = ErrorDisplay()
        auto = w.Layout(width="auto")
        self.add_button = w.Button(description="Add checked to basket", icon="cart-plus",
                                   layout=auto)  # fmt: skip
        self.download_button = w.Button(description="Download basket", icon="download",
                                        layout=auto)  # fmt: skip
        self.export_button = w.Button(description="Export basket", icon="file-export",
                                      layout=auto)  # fmt: skip
        self.send_button = w.Button(description="Send basket", icon="paper-plane", layout=auto,
                                    tooltip="Send the basket's rows over SAMP (connect first)")  # fmt: skip
        self.clear_button = w.Button(description="Empty", icon="trash", layout=auto)
        self.progress = w.FloatProgress(min=0, max=1, layout=w.Layout(width="160px"))
        self.contents = w.HTML()
        self.status = w.HTML()
        self.add_button.on_click(lambda _: guarded(self, self.add))
        self.download_button.on_click(lambda _: guarded(self, self.download))
        self.export_button.on_click(lambda _: guarded(self, self.export))
        self.send_button.on_click(lambda _: guarded(self, self.send))
        self.clear_button.on_click(lambda _: guarded(self, self.clear))
        buttons = [self.add_button, self.download_button, self.export_button, self.send_button,
                   self.clear_button, self.progress]  # fmt: skip
        super().__init__(children=[w.HBox(buttons), self.contents, self.status,
                                   self.error_display], **kwargs)  # fmt: skip
        self.add_class("ctanb-basket")
        self._show()

    # --- public methods (one per button) ------------------------------------------------------
    def add(self, results: Any = None) -> int:
        """Add *results* (default: the checked rows); returns how many were new."""
        results = self.app.selected_results() if results is None else results
        new = 0
        for record in results:
            key = _key(record)
            if key not in self.records:
                self.records[key] = record
                new += 1
        self._show()
        kept = len(results) - new
        self.status.value = status_html(
            f"{new} dataset(s) added" + (f", {kept} already in the basket" if kept else ""), "ok"
        )
        return new

    def clear(self) -> None:
        """Empty the basket."""
        self.records = {}
        self._show()
        self.status.value = ""

    @property
    def table(self):
        """The basket's rows as one astropy Table (columns missing in a search masked)."""
        from astropy.table import vstack

        self._require()
        rows = [(row := record.row).table[row.index : row.index + 1]
                for record in self.records.values()]  # fmt: skip
        return vstack(rows, join_type="outer", metadata_conflicts="silent")

    def download(self, dest: str | Path | None = None) -> list[Path]:
        """Download every dataset of the basket (with IRFs) with progress; returns the files."""
        from .analysis import products_dir

        self._require()
        folder = Path(dest) if dest else products_dir() / "downloads"
        records = list(self.records.values())
        return download_records(self.app.search.archive, records, folder, self.progress,
                                self.status)  # fmt: skip

    def export(self, path: str | Path | None = None, format: str | None = None) -> Path:
        """Write the basket as VOTable, FITS, CSV or ECSV (default: the table's format
        choice, a new file in the products folder)."""
        from .analysis import products_dir

        self._require()
        if path is None:
            format = format or self.app.tools.format_box.value
            path = products_dir() / f"basket-{time.strftime('%Y%m%d-%H%M%S')}.{_SUFFIX[format]}"
        written = write_table(self.table, path, format)
        self.status.value = status_html(
            f"{len(self.records)} row(s) written to {_shown_path(written)}", "ok"
        )
        return written

    def send(self, to: str | None = None):
        """Send the basket as a table over SAMP (to the application chosen beside Send table)."""
        self._require()
        link = self.app.samp
        if link is None:
            raise CtanbError("SAMP is not connected: press Connect below, then Send basket")
        controls = self.app.samp_controls
        to = to if to is not None else (controls.target if controls is not None else None)
        delivery = link.send_table(self.table, to=to, name="ctanb basket", wait=False)

        def said(d) -> None:
            failed = d.done and (not d.ok or not d.recipients)
            state = "error" if failed else ("ok" if d.done else "info")
            self.status.value = status_html(d.summary().replace("\n", "; "), state)

        said(delivery)
        delivery.on_done(said)
        return delivery

    # --- plumbing ------------------------------------------------------------------------------
    def _require(self) -> None:
        if not self.records:
            raise CtanbError("the basket is empty: check rows, then press Add checked to basket")

    def _show(self) -> None:
        if not self.records:
            self.contents.value = (
                "<span class='ctanb-basket-empty' style='color:#555'>Basket: empty. Check rows "
                "in any search and press \u201cAdd checked to basket\u201d.</span>"
            )
            return
        names = ", ".join(html.escape(str(r["obs_id"])) for r in self.records.values())
        self.contents.value = (
            f"<b class='ctanb-basket-count'>Basket: {len(self.records)} dataset(s)</b> "
            f"<span style='color:#555'>({names})</span>"
        )
