"""The provenance panel and the archive: publish a product, open a published one, redo it.

A mixin of :class:`~ctanb.widgets.provenance.ProvenancePanel`, kept apart so the panel's
own module stays about looking at a graph. Publishing goes through
:meth:`Archive.publish <ctanb.client.Archive.publish>` (the archive checks the product,
its inputs and the rights); a published product is opened from the archive by its DID
(its provenance from ProvSAP, with the archive's rights), and redone from its DID as
another user would (``ctanb prov redo DID``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w

from .._errors import AuthError, CtanbError, ProvenanceError, ServiceError

__all__ = ["CURATION_FIELDS", "ArchiveActions"]

#: Curation fields the Publish tab offers: name -> (label, placeholder).
CURATION_FIELDS = {
    "title": ("Title", "flux points of the Crab Nebula, 4 runs"),
    "creator": ("Creator", "who made it"),
    "contact": ("Contact", "e-mail address"),
    "version": ("Version", "e.g. 1.0"),
    "analysis": ("Analysis", "groups the products of one analysis"),
    "background_method": ("Background", "e.g. reflected regions"),
    "cuts_description": ("Cuts", "e.g. standard cuts"),
    "fit_hypothesis": ("Fit hypothesis", "e.g. log-parabola"),
}


def _status(text: str, state: str) -> str:
    colour = {"ok": "#2e7d32", "error": "#c62828"}.get(state, "#555555")
    return (f"<div class='ctanb-publish-status ctanb-{state}' style='color:{colour};"
            f"white-space:pre-wrap'>{html.escape(text)}</div>")  # fmt: skip


class ArchiveActions:
    """Publish, open-from-archive and redo-by-DID for the provenance panel."""

    # Its traits (published_did, publish_message, publish_ok) are the panel's.

    def _archive_widgets(self) -> w.VBox:
        self.curation_boxes = {
            name: w.Text(description=label, placeholder=hint, style={"description_width": "100px"},
                         layout=w.Layout(width="48%"))
            for name, (label, hint) in CURATION_FIELDS.items()
        }  # fmt: skip
        self.publish_view = w.HTML()
        return w.VBox([w.HBox(list(self.curation_boxes.values()),
                              layout=w.Layout(flex_flow="row wrap")),
                       w.HTML("<small>The archive checks the product against its provenance, "
                              "that every input is one of its datasets, and your rights to "
                              "them (your archive token).</small>"),
                       self.publish_view])  # fmt: skip

    # --- the archive ----------------------------------------------------------------------
    @property
    def archive(self):
        """The archive products are published to and opened from (connected on first use)."""
        from ..client import Archive, connect

        source = self._archive_source
        if callable(source) and not isinstance(source, Archive):
            source = source()
        if not isinstance(source, Archive):
            source = connect(source, progress=False)
        self._archive_source = source
        return source

    def curation(self) -> dict[str, str]:
        """The curation fields filled in the Publish tab.

        Returns
        -------
        dict of str
            Field name -> value, for the fields that are not empty.
        """
        return {k: b.value.strip() for k, b in self.curation_boxes.items() if b.value.strip()}

    # --- public methods (one per button) ---------------------------------------------------
    def publish(self, product: str | Path | None = None, *, curation: dict | None = None):
        """Publish the product shown (or *product*) into the archive (the "Publish" button).

        The archive's answer is shown in the panel: the DID, or which check refused it.

        Parameters
        ----------
        product : path, optional
            A FITS product made by ctanb steps (default: the one chosen in the panel).
        curation : dict, optional
            Curation fields (default: those filled in the Publish tab).

        Returns
        -------
        Published
            The product's DID and rights in the archive.

        Raises
        ------
        ProvenanceError
            No product chosen, or one that is already in the archive.
        CtanbError
            The archive refused it (the panel shows which check failed).
        """
        path = str(product or self.product_list.value.strip() or self.product or "")
        if path.startswith("ivo://"):
            raise ProvenanceError(f"{path} is already in the archive (it was opened from there)")
        if not path:
            raise ProvenanceError("choose a product to publish (a FITS file made by a ctanb step)")
        self.publish_ok, self.publish_message = None, ""
        self.publish_view.value = _status(f"publishing {Path(path).name} ...", "pending")
        try:
            done = self.archive.publish(path, curation=self.curation() if curation is None
                                        else curation)  # fmt: skip
        except CtanbError as exc:
            words = "refused: " if getattr(exc, "condition", "") else "not published: "
            self.publish_ok, self.publish_message = False, words + exc.message
            self.publish_view.value = _status(self.publish_message, "error")
            raise
        self.publish_ok, self.publish_message = True, str(done)
        self.published_did = done.did
        self.publish_view.value = _status(self.publish_message, "ok")
        return done

    def open_published(self, did: Any, archive: Any = None):
        """Show a published product of the archive: its lineage from ProvSAP (BACK, all).

        Parameters
        ----------
        did : str or Record
            The product's publisher DID, or its row (a result record) of ``ivoa.obscore``.
        archive : Archive, optional
            Where it is published (default: the panel's archive).

        Returns
        -------
        ProvenanceGraph
            Its provenance as the archive gives it (rights applied).

        Raises
        ------
        ProvenanceError
            Not a product DID, or no provenance for it in the archive.
        AuthError
            The product is proprietary to a group the token does not belong to.
        ServiceError
            The archive cannot be reached or answered an error.
        """
        from ..provenance.document import parse

        if archive is not None:
            self._archive_source = archive
        if not isinstance(did, str):
            did = str(did["obs_publisher_did"])
        did = did.strip()
        if not did.startswith("ivo://"):
            raise ProvenanceError(f"{did!r} is not the DID of a published product (ivo://...)")
        arch = self.archive
        try:
            resp = arch.session.get(f"{arch.url}/provsap", timeout=120, params={
                "ID": did, "DEPTH": "ALL", "DIRECTION": "BACK", "RESPONSEFORMAT": "PROV-JSON"})  # fmt: skip
        except Exception as exc:  # requests' errors: the archive is out of reach
            raise ServiceError(f"cannot reach the archive at {arch.url}: {exc}") from None
        if resp.status_code in (401, 403):
            raise AuthError(f"{did}: {resp.text.strip()}")
        if resp.status_code == 404:
            raise ProvenanceError(f"the archive has no provenance for {did} (not a product?)")
        if resp.status_code != 200:
            raise ServiceError(f"the archive answered HTTP {resp.status_code} for the "
                               f"provenance of {did}")  # fmt: skip
        graph = parse(resp.text, "json")
        self.verdict, self.redo_ok = "", None
        self.verdict_view.value = ""
        self._display(graph, did)
        self.published_did = did
        return graph

    def _redo_published(self, out: Path):
        """Fetch the published product by DID (sha256 checked) and redo it from the archive."""
        from ..client.publish import fetch_published
        from ..provenance import redo

        arch = self.archive
        path, url = fetch_published(self.product, out, archive=arch.url, client=arch)
        return redo(path, out, archive=url)
