"""ProvenancePanel: the graph and lineage of a product, store queries, and redo with its verdict."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w
import traitlets as t

from .._errors import ProvenanceError
from ._action import ActionButton
from ._errors import ErrorDisplay, guarded
from ._provenance_archive import ArchiveActions

__all__ = ["ProvenancePanel"]


def _table_html(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 6px'>{html.escape(h)}</th>"
                   for h in header)  # fmt: skip
    body = "".join(
        "<tr>"
        + "".join(f"<td style='padding:1px 6px'>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return (
        f"<table class='ctanb-lineage'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


class ProvenancePanel(ArchiveActions, w.VBox):
    """Look at, publish and redo the provenance of a product.

    Parameters
    ----------
    store : ProvenanceStore, optional
        Where the query form looks (default: :func:`~ctanb.provenance.default_store`).
    archive : Archive, str or callable, optional
        The archive to publish to and open published products from (or its URL, or a
        getter of it); default: :func:`ctanb.connect`'s default, on first use.
    **kwargs
        Passed to the ipywidgets base class (``layout``, ...).

    Attributes
    ----------
    product : str
        The product shown: a file, or the DID of a product opened from the archive.
    activities : list of dict
        The lineage: one ``{"name", "version", "status", "start", "end"}`` per activity.
    verdict : str
        The last redo's verdict (``str(RedoReport)``), ``redo_ok`` its outcome.
    published_did, publish_message, publish_ok : str, str, bool
        The DID of the product published or opened; what the last publication said.
    """

    product = t.Unicode("")
    products = t.List(t.Unicode())
    activities = t.List(t.Dict())
    svg = t.Unicode("")
    verdict = t.Unicode("")
    redo_ok = t.Bool(None, allow_none=True)
    query_results = t.List(t.Dict())
    error = t.Unicode("")
    #: Graph zoom: 1 fits the graph to the panel's width; larger zooms in (scroll to pan).
    zoom = t.Float(1.0)
    #: The product's DID once published (or opened from the archive).
    published_did = t.Unicode("")
    #: What the last publication said ("" before any), ``publish_ok`` its outcome.
    publish_message = t.Unicode("")
    publish_ok = t.Bool(None, allow_none=True)

    def __init__(self, store: Any = None, archive: Any = None, **kwargs: Any) -> None:
        self._store = store
        self._archive_source = archive
        self.error_display = ErrorDisplay()
        self.product_list = w.Combobox(description="Product", placeholder="path of a FITS product",
                                       layout=w.Layout(width="70%"), ensure_option=False)  # fmt: skip
        # The product typed or pasted and the click travel together (a kernel still busy
        # with the last redo would otherwise see the click before the new path).
        self.show_button = ActionButton(description="Show", icon="sitemap",
                                        inputs=[self.product_list])  # fmt: skip
        self.redo_button = ActionButton(description="Redo", icon="repeat",
                                        inputs=[self.product_list])  # fmt: skip
        publish_box = self._archive_widgets()
        self.publish_button = ActionButton(description="Publish", icon="upload",
                                           tooltip="Publish the product into the archive",
                                           inputs=[self.product_list,
                                                   *self.curation_boxes.values()])  # fmt: skip
        self.graph_view = w.HTML(layout=w.Layout(overflow="auto", max_height="480px"))
        self.zoom_out_button = w.Button(description="", icon="search-minus", tooltip="Zoom out",
                                        layout=w.Layout(width="40px"))  # fmt: skip
        self.zoom_in_button = w.Button(description="", icon="search-plus", tooltip="Zoom in",
                                       layout=w.Layout(width="40px"))  # fmt: skip
        self.zoom_fit_button = w.Button(description="Fit", tooltip="Whole graph in the panel",
                                        layout=w.Layout(width="60px"))  # fmt: skip
        self.zoom_out_button.on_click(lambda _: self.zoom_out())
        self.zoom_in_button.on_click(lambda _: self.zoom_in())
        self.zoom_fit_button.on_click(lambda _: self.zoom_fit())
        self.lineage_view = w.HTML()
        self.verdict_view = w.HTML()
        self.query_name = w.Text(description="Activity", placeholder="e.g. spectrum")
        self.query_version = w.Text(description="Version", placeholder="e.g. 1.0")
        self.query_button = w.Button(description="Find products", icon="search")
        self.query_view = w.HTML()
        self.show_button.on_click(lambda _: guarded(self, self.show))
        self.redo_button.on_click(lambda _: guarded(self, self.redo))
        self.publish_button.on_click(lambda _: guarded(self, self.publish))
        self.query_button.on_click(lambda _: guarded(self, self.query))
        graph_box = w.VBox([
            w.HBox([self.zoom_out_button, self.zoom_in_button, self.zoom_fit_button,
                    w.HTML("<small>scroll to pan; hover an activity for all its parameters"
                           "</small>")]),
            self.graph_view])  # fmt: skip
        tabs = w.Tab(children=[graph_box, self.lineage_view,
                               w.VBox([w.HBox([self.query_name, self.query_version,
                                               self.query_button]), self.query_view]),
                               publish_box],
                     titles=("Graph", "Lineage", "Query store", "Publish"))  # fmt: skip
        super().__init__(
            children=[
                w.HBox(
                    [self.product_list, self.show_button, self.redo_button, self.publish_button]
                ),
                self.error_display,
                self.verdict_view,
                tabs,
            ],
            **kwargs,
        )

    @t.observe("products")
    def _on_products(self, change: dict) -> None:
        self.product_list.options = list(change["new"])

    # --- public methods ----------------------------------------------------------------------
    def add_product(self, path: str | Path) -> None:
        """Offer *path* in the product list (the analysis panel calls this).

        Parameters
        ----------
        path : str or Path
            A product file.
        """
        path = str(path)
        if path not in self.products:
            self.products = [*self.products, path]
        self.product_list.value = path

    def show(self, product: str | Path | None = None):
        """Show the provenance graph (SVG) and lineage table of a product file.

        Parameters
        ----------
        product : str or Path, optional
            The product (default: the one chosen in the panel).

        Returns
        -------
        ProvenanceGraph
            The product's provenance.

        Raises
        ------
        ProvenanceError
            No product chosen, the file does not exist or carries no provenance.
        """
        from ..provenance import read_provenance

        path = Path(product or self.product_list.value.strip())
        if not str(path) or str(path) == ".":
            raise ProvenanceError("choose a product (a FITS file made by a ctanb step)")
        if not path.is_file():
            raise ProvenanceError(f"product {path} does not exist")
        graph = read_provenance(path)
        self._display(graph, str(path))
        return graph

    def _display(self, graph: Any, product: str) -> None:
        self.product = product
        self.product_list.value = product
        self.activities = [
            {"name": a.name, "version": a.version, "status": a.status,
             "start": a.start_time, "end": a.end_time or "", "id": a.id}
            for a in sorted(graph.activities.values(), key=lambda a: a.start_time)
        ]  # fmt: skip
        self.svg = graph.to_svg()
        self.zoom = 1.0
        self._draw_graph()
        rows = [[a["name"], a["version"], a["status"], a["start"], a["end"]]
                for a in self.activities]  # fmt: skip
        entities = [[e.kind, e.label or Path(e.location or e.id).name, e.data_level or "",
                     e.obs_id or "", (e.sha256 or "")[:12]]
                    for e in graph.entities.values()]  # fmt: skip
        self.lineage_view.value = (
            "<b>Activities</b>" + _table_html(["activity", "version", "status", "start", "end"], rows)
            + "<b>Entities</b>" + _table_html(["kind", "name", "level", "obs_id", "sha256"], entities)
        )  # fmt: skip

    def zoom_in(self) -> None:
        """Show the graph larger (scroll the panel to pan)."""
        self.zoom = min(self.zoom * 1.5, 8.0)

    def zoom_out(self) -> None:
        """Show more of the graph at once."""
        self.zoom = max(self.zoom / 1.5, 1.0)

    def zoom_fit(self) -> None:
        """Fit the whole graph to the panel's width."""
        self.zoom = 1.0

    @t.observe("zoom")
    def _on_zoom(self, change: dict) -> None:
        self._draw_graph()

    def _draw_graph(self) -> None:
        # Graphviz sizes the SVG in points (a 4-run graph is ~2000 px wide): at zoom 1 it is
        # scaled to the panel's width, larger zooms overflow the panel, which scrolls (pans).
        width = f"{self.zoom * 100:.0f}%"
        self.graph_view.value = (
            "<div class='ctanb-prov-graph'><style>.ctanb-prov-graph svg{"
            f"width:{width};max-width:none;height:auto}}</style>{self.svg}</div>"
            if self.svg
            else ""
        )

    def redo(self, out_dir: str | Path | None = None):
        """Re-run the product's recorded chain into *out_dir* and show the verdict.

        Parameters
        ----------
        out_dir : str or Path, optional
            Where the new products go (default: a new temporary folder).

        Returns
        -------
        RedoReport
            The verdict.
        """
        from ..provenance import redo

        chosen = self.product_list.value.strip()
        if not self.product or (chosen and chosen != self.product):
            self.open_published(chosen) if chosen.startswith("ivo://") else self.show()
        out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="ctanb-redo-"))
        self.verdict_view.value = "<i>re-running ...</i>"
        if self.product.startswith("ivo://"):  # published: fetched by DID, inputs by DID
            report = self._redo_published(out)
        else:
            report = redo(self.product, out)
        self.verdict, self.redo_ok = str(report), bool(report.ok)
        colour = "#2e7d32" if report.ok else "#c62828"
        self.verdict_view.value = (
            f"<pre class='ctanb-verdict' style='color:{colour};white-space:pre-wrap'>"
            f"{html.escape(self.verdict)}</pre>"
        )
        return report

    def query(self, name: str | None = None, version: str | None = None):
        """Products of the store made by activity *name* (and *version*).

        Parameters
        ----------
        name, version : str, optional
            The activity name and version (default: the query form's).

        Returns
        -------
        list of EntityRecord
            The products found.
        """
        from ..provenance import default_store

        store = self._store or default_store()
        name = name if name is not None else (self.query_name.value.strip() or None)
        version = version if version is not None else (self.query_version.value.strip() or None)
        found = store.products(name=name, version=version, limit=200)
        self.query_results = [{"id": e.id, "location": e.location or "", "type": e.product_type
                               or "", "level": e.data_level or ""} for e in found]  # fmt: skip
        self.query_view.value = _table_html(
            ["location", "type", "level"],
            [[r["location"], r["type"], r["level"]] for r in self.query_results],
        )
        for r in self.query_results:
            if r["location"].endswith((".fits", ".fits.gz")):
                self.add_product(r["location"])
        return found
