"""ctanb.App: the Data Distiller in a notebook (search, results, sky, analysis, provenance, jobs)."""

from __future__ import annotations

import html
import os
import warnings
from typing import Any

import ipywidgets as w
import traitlets as t

from . import _products
from ._basket import Basket
from ._errors import guarded
from ._products_list import ProductsList
from ._tools import LoginBox, ResultsTools
from .coverage import CoverageLayers
from .exposure import ExposurePlots
from .provenance import ProvenancePanel
from .results import ResultsTable
from .search import SearchPanel
from .sky import SkyView

__all__ = ["App"]


class App(w.VBox):
    """All panels in one widget, wired together.

    Search results fill the table and the sky; rows checked in the table are
    highlighted on the sky and clicking a footprint checks its row (one
    ``selected_rows`` list, linked); the analysis panel works on the checked
    rows, and its products go to the provenance panel. With a
    :class:`~ctanb.samp.SampLink`, selections made in TOPCAT or Aladin select
    the same rows here.

    Parameters
    ----------
    archive : Archive or str, optional
        The archive or its TAP URL (default: :func:`ctanb.connect`'s); connected
        on first use.
    samp : SampLink, optional
        Adds Send table/selected/image buttons and listens to SAMP selections.
    use_aladin : bool
        Draw Aladin Lite next to the plain sky plot.
    **kwargs
        Passed to :class:`ipywidgets.VBox` (``layout``, ...).

    Examples
    --------
    >>> import ctanb
    >>> app = ctanb.App()
    >>> app.search.archive.url == ctanb.connect().url
    True

    In a notebook, ``app`` as the last line of a cell shows it.
    """

    results = t.Any(None, allow_none=True)

    def __init__(
        self, archive: Any = None, *, samp: Any = None, use_aladin: bool = True, **kwargs: Any
    ) -> None:
        self.search = SearchPanel(archive)
        self.table = ResultsTable()
        self.sky = SkyView(use_aladin=use_aladin)
        # Coverage on the sky and exposure charts (issue 18).
        self.coverage = CoverageLayers(lambda: self.search.archive, sky=self.sky)
        self.exposure = ExposurePlots()
        self.provenance = ProvenancePanel(archive=lambda: self.search.archive)
        self.analysis = _analysis_panel(self)
        self.jobs = None  # the JobList, built when its tab is first opened (it reads the store)
        # The Jobs tab: the async archive searches of this App, then the analysis jobs.
        self.search_jobs = w.HTML()
        self._analysis_jobs = w.VBox(
            [w.HTML("<i>loading jobs ...</i>")] if _has_job_list() else
            [w.HTML("<i>Analysis jobs need the ctanb.jobs package (not installed).</i>")]
        )  # fmt: skip
        self._jobs_page = w.VBox([w.HTML("<b>Archive searches (asynchronous)</b>"),
                                  self.search_jobs, w.HTML("<b>Analysis jobs</b>"),
                                  self._analysis_jobs])  # fmt: skip
        self.search.observe(lambda ch: self._show_search_jobs(ch["new"]), "async_queries")
        self._show_search_jobs([])
        self.tools = ResultsTools(self)
        self.login_box = LoginBox(self)
        self.login_box.show_identity()
        self.basket = Basket(self)
        self.products = ProductsList()
        self.samp = samp
        self.samp_controls = None  # SampControls when a SampLink is given
        t.link((self.table, "selected_rows"), (self.sky, "selected_rows"))
        t.link((self.table, "selected_rows"), (self.exposure, "selected_rows"))
        # A footprint clicked on the sky: its row is shown (page, scroll, highlight).
        self.sky.observe(lambda ch: ch["new"] >= 0 and guarded(self.table, self.table.show_row,
                                                              ch["new"]), "clicked_row")  # fmt: skip
        self.search.observe(lambda ch: self.show_results(ch["new"]), "results")
        self.search.observe(lambda ch: self._mark_target(ch["new"]), "resolved")
        # The marker follows the position the query uses (typed RA/Dec win over a name).
        self.search.observe(lambda ch: self._mark_position(ch["new"]), "criteria")
        # A checked product row (DL4/DL5) opens in the provenance panel, from the archive.
        self.open_product_button = w.Button(description="Provenance of product", icon="sitemap",
                                            layout=w.Layout(width="auto"))  # fmt: skip
        self.open_product_button.on_click(lambda _: guarded(self.table, self.open_product))
        # Rows of an earlier search after a failure: kept, but said to be old.
        self.results_note = w.HTML()
        self.search.observe(lambda ch: self._show_stale(ch["new"]), "stale")
        explore = w.VBox([self.login_box, self.search, w.HTML("<b>Results</b>"),
                          self.results_note, self.table,
                          self.table.error_display, self.tools, self.basket,
                          self.open_product_button, self.sky, self.sky.error_display,
                          self.coverage, self.exposure])  # fmt: skip
        # SAMP is in every App: connected on demand (a SAMP hub on this computer, or the
        # browser's Web Profile for hosted kernels), or at once when a link is given.
        self.samp_box = w.VBox([_samp_starter(self)])
        explore.children = (*explore.children, self.samp_box)
        if samp is not None:
            self.samp_box.children = [self._samp_controls(samp)]
        pages = [("Search", explore)]
        if self.analysis is not None:
            pages.append(("Analysis", self.analysis))
        pages.append(("Provenance", self.provenance))
        pages.append(("Jobs", self._jobs_page))
        pages.append(("Products", self.products))
        # The list follows what writes files: exports, downloads, analysis products.
        for source, name in ((self.tools.status, "value"), (self.basket.status, "value"),
                             (self.analysis, "products")):  # fmt: skip
            if source is not None:
                source.observe(lambda _: guarded(self.products, self.products.refresh), name)
        self.tabs = w.Tab(children=[p for _, p in pages], titles=tuple(n for n, _ in pages))
        self.tabs.observe(lambda ch: self._on_tab(pages[ch["new"]][0]), "selected_index")
        super().__init__(children=[w.HTML("<h3>ctanb Data Distiller</h3>"), self.tabs], **kwargs)
        self.add_class("ctanb-app")

    # --- public methods ------------------------------------------------------------------------
    def show_results(self, results: Any) -> None:
        """Put *results* in the table and on the sky.

        Parameters
        ----------
        results : Results or None
            What a search returned; None changes nothing.
        """
        if results is None:
            return
        self.results = results
        self.table.set_results(results)
        self.sky.set_results(results)
        self.coverage.set_results(results)
        self.exposure.set_results(results)

    @property
    def selected(self):
        """The checked rows as an astropy Table."""
        return self.table.selected

    def selected_results(self):
        """The checked rows as :class:`~ctanb.client.Results` (for downloads and analysis).

        Returns
        -------
        Results
            The checked rows, with the archive they came from.

        Raises
        ------
        CtanbError
            No search yet, no row checked, or the rows are not datasets (a query
            without ``access_url``, ``s_ra`` or ``s_dec``).
        """
        from .._errors import CtanbError

        if self.results is None:
            raise CtanbError("no results yet: run a search first")
        if not self.table.selected_rows:
            raise CtanbError("no rows selected: check rows in the table or click footprints")
        missing = [c for c in ("access_url", "s_ra", "s_dec") if c not in self.table.columns]
        if missing:
            raise CtanbError(
                "the selected rows are not datasets (no "
                + ", ".join(missing)
                + " column): search with SELECT * to analyse or download them"
            )
        return self.results[sorted(self.table.selected_rows)]

    def open_product(self, row: Any = None):
        """Open the checked product row (or *row*) in the provenance panel, from the archive.

        Parameters
        ----------
        row : astropy.table.Row, optional
            A product row of the results; default: the one checked.

        Returns
        -------
        object
            What the provenance panel opened (its lineage from the archive).
        """
        return _products.open_product(self, row)

    def selected_spectrum(self) -> dict | None:
        """The checked flux-point/SED product, fetched for "Send spectrum".

        Returns
        -------
        dict or None
            What :meth:`ctanb.samp.SampLink.send_spectrum` needs; None when no spectrum
            or SED is checked.
        """
        return _products.spectrum_to_send(self)

    def export(self, path: Any = None, format: str | None = None):
        """Write the results table (VOTable, FITS, CSV) to *path* or the products folder.

        Parameters
        ----------
        path : str or Path, optional
            The file (default: a new file in the products folder).
        format : str, optional
            The table format; default: from *path*'s suffix, else the one chosen in
            the panel.

        Returns
        -------
        Path
            The file written.
        """
        return self.tools.export(path, format)

    def download_selected(self, dest: Any = None):
        """Download the checked datasets (with IRFs) into *dest* or ``ctanb-products/downloads``.

        Parameters
        ----------
        dest : str or Path, optional
            The folder (default: ``downloads`` in the products folder).

        Returns
        -------
        list of Path
            The files, each dataset followed by its IRF file.
        """
        return self.tools.download(dest)

    def login(self, token: str | None = None) -> bool:
        """Send *token* (default: the Token field) with every archive request; "" logs out.

        The token is not kept in the field.

        Parameters
        ----------
        token : str, optional
            The archive token (``group:token`` for DaCHS); default: the Token field.

        Returns
        -------
        bool
            True when logged in; False when logged out or when the archive does
            not know the token (the login box says so, in red).

        Raises
        ------
        ConfigError
            The token given is not text.
        """
        from .._errors import ConfigError, CtanbError
        from ._async import status_html

        if token is not None and not isinstance(token, str):
            raise ConfigError(f"login: give the token as text (a string), not {token!r}")
        token = (self.login_box.token_text.value if token is None else token).strip()
        # Scoped to the archive's origin: a DataLink or file elsewhere never gets it.
        archive = self.search.archive
        archive.set_token(token or None)
        self.login_box.token_text.value = ""
        if not token:
            self.login_box.show(False)
            return False
        try:  # an unknown token must not look like a login
            who = archive.whoami()
        except CtanbError as exc:
            archive.set_token(None)
            self.login_box.status.value = status_html(f"not logged in: {exc}", "error")
            return False
        if who is None:
            self.login_box.show(True, "this archive does not check tokens at login")
        else:
            groups = ", ".join(who.get("groups") or ["none"])
            self.login_box.status.value = status_html(
                f"logged in: proprietary data you may see (groups: {groups})", "ok"
            )
        return True

    def open_jobs(self):
        """The JobList panel, built on first use.

        Returns
        -------
        JobList or None
            None when the jobs panel cannot be built here (``ctanb.jobs`` missing).
        """
        if self.jobs is None and _has_job_list():
            from .joblist import JobList

            self.jobs = JobList()
            self._analysis_jobs.children = [self.jobs]
        return self.jobs

    # --- plumbing --------------------------------------------------------------------------------
    def _on_tab(self, title: str) -> None:
        if title == "Jobs":
            guarded(self.search, self.open_jobs)
        elif title == "Products":
            guarded(self.products, self.products.refresh)

    def _show_search_jobs(self, queries: list[dict]) -> None:
        from .joblist import _badge

        if not queries:
            self.search_jobs.value = (
                "<i class='ctanb-jobs-empty'>No asynchronous searches yet: tick "
                "\u201casynchronous (UWS job)\u201d in the Search tab, then press Search; "
                "each search is listed here with its phase and time.</i>"
            )
            return
        rows = "".join(
            f"<tr><td>{_badge(q['phase'])}</td><td>{q['elapsed']:.1f} s</td>"
            f"<td>{'' if q['rows'] is None else q['rows']}</td>"
            f"<td><code>{html.escape(' '.join(q['adql'].split())[:120])}</code></td></tr>"
            for q in queries
        )
        self.search_jobs.value = (
            "<table class='ctanb-search-jobs'><tr><th>Phase</th><th>Time</th><th>Rows</th>"
            f"<th>ADQL</th></tr>{rows}</table>"
        )

    def _show_stale(self, why: str) -> None:
        self.results_note.value = (
            f"<b class='ctanb-stale' style='color:#b71c1c'>{html.escape(why)}</b>" if why else ""
        )
        if why:  # the target marker belongs to the failed search, not to these rows
            self.sky.clear_target()

    def _mark_position(self, criteria: dict) -> None:
        if "ra" in criteria and "dec" in criteria:
            self.sky.set_target("typed position", criteria["ra"], criteria["dec"])
        elif self.search.position_source == "name" and self.search.resolved:
            self._mark_target(self.search.resolved)
        elif "target" not in criteria:  # no position in the query: no marker
            self.sky.clear_target()

    def _mark_target(self, resolved: dict) -> None:
        if resolved:
            self.sky.set_target(resolved["name"], resolved["ra"], resolved["dec"])
        else:  # a failed resolve: the old marker would show a position no longer searched
            self.sky.clear_target()

    def connect_samp(self, how: str | None = None, *, lockfile: Any = None):
        """Connect to SAMP (the "Connect" button).

        Parameters
        ----------
        how : {"desktop", "browser"}, optional
            ``"desktop"``: the SAMP hub on this computer (started if none runs);
            ``"browser"``: the Web Profile through the user's browser, for hosted
            kernels. Default: the choice shown in the panel. (``"hub"``, the old
            name of ``"desktop"``, is deprecated: "hub" alone means JupyterHub.)
        lockfile : str or Path, optional
            The SAMP hub's lock file, for ``"desktop"`` (default: SAMP's standard place).

        Returns
        -------
        SampLink
            The link (the same one when already connected).

        Raises
        ------
        ConfigError
            *how* is neither ``"desktop"`` nor ``"browser"``.
        """
        from ..samp import SampLink

        how = how or self.samp_box.children[0].children[0].value
        if how == "hub":
            warnings.warn('connect_samp("hub") is deprecated: use connect_samp("desktop")',
                          DeprecationWarning, stacklevel=2)  # fmt: skip
            how = "desktop"
        if how not in ("desktop", "browser"):
            from .._errors import ConfigError

            raise ConfigError(f"connect_samp: give 'desktop' or 'browser', not {how!r}")
        if self.samp is not None:
            return self.samp
        link = (SampLink.bridge() if how == "browser"
                else SampLink.connect(lockfile, start_samp_hub=True))  # fmt: skip
        self.samp = link
        children = [self._samp_controls(link)]
        if link.widget is not None:  # the bridge runs in the page that shows it
            children.insert(0, link.widget)
        self.samp_box.children = children
        return link

    def _samp_controls(self, samp: Any):
        from .samp import SampControls

        controls = SampControls(samp, table=lambda: self.table.table,
                                rows=lambda: list(self.table.selected_rows),
                                image=self.count_map_image, spectrum=self.selected_spectrum,
                                has_spectrum=lambda: _products.has_spectrum(self))  # fmt: skip
        self.samp_controls = controls
        self.table.observe(lambda _: controls.refresh_spectrum(), "selected_rows")
        self.provenance.observe(lambda _: controls.refresh_spectrum(), "product")

        def from_samp(selection) -> None:  # TOPCAT/Aladin selected rows of our table
            table = self.table.table
            if table is None or selection.kind != "rows":
                return
            if samp.table_id(table) == selection.table_id:
                self.table.selected_rows = sorted(
                    {r for r in selection.rows if 0 <= r < len(table)}
                )

        samp.on_selection(from_samp)
        return controls.widget

    def count_map_image(self):
        """The last count map summed over energy (what "Send image" sends).

        Returns
        -------
        gammapy.maps.Map or None
            None before the analysis panel made a map.
        """
        result = getattr(self.analysis, "last_map", None)
        if result is None:
            return None
        counts = result.dataset.counts
        return counts.sum_over_axes(keepdims=False) if counts.geom.axes else counts


def _samp_starter(app: App) -> w.HBox:
    hosted = bool(os.environ.get("JUPYTERHUB_USER"))
    how = w.Dropdown(options=[("through this browser (hosted notebook)", "browser"),
                              ("on this computer (SAMP hub)", "desktop")],
                     value="browser" if hosted else "desktop", description="SAMP",
                     layout=w.Layout(width="360px"))  # fmt: skip
    button = w.Button(description="Connect", icon="plug",
                      tooltip="Send tables and images to TOPCAT, Aladin, DS9")  # fmt: skip
    note = w.HTML("<span style='color:#555'>not connected: press Connect to send the table, "
                  "the checked rows or a count map to TOPCAT or Aladin</span>")  # fmt: skip
    button.on_click(lambda _: guarded(app.search, app.connect_samp))
    return w.HBox([how, button, note])


def _analysis_panel(app: App):
    try:
        from .analysis import AnalysisPanel
    except ImportError:  # the analysis steps are optional (gammapy)
        return None
    return AnalysisPanel(app)


def _has_job_list() -> bool:
    from importlib.util import find_spec

    try:
        return (
            find_spec("ctanb.widgets.joblist") is not None and find_spec("ctanb.jobs") is not None
        )
    except ImportError:
        return False
