"""The search form's product section: data level, product kind and provenance criteria.

Published products (DL4/DL5) are found like datasets: these boxes become
:class:`~ctanb.client.Criteria` keywords (``data_level``, ``product_kind``,
``derived_from_run``, ``software``, ``software_version``, ``step``, ``step_version``,
``parameter``), which :func:`~ctanb.client.criteria.build_adql` turns into conditions over
``ivoa.obscore`` and the ``provenance`` tables, shown in the ADQL box like every other
criterion. Software, step and parameter, like the run, cover the product's whole lineage
(:mod:`ctanb.client._product_criteria`).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..datamodel import DATA_LEVELS

__all__ = ["PRODUCT_TEXTS", "ProductFields"]

#: Provenance criteria typed as text: criterion -> (label, placeholder, tooltip).
PRODUCT_TEXTS = {
    "derived_from_run": ("From run", "obs_id, e.g. 23523",
                         "products with this run anywhere in their lineage"),
    "software": ("Software", "e.g. gammapy",
                 "software of any activity of the product's lineage"),
    "software_version": ("version", "e.g. 2.1", "its version"),
    "step": ("Step", "e.g. counts-map",
             "a step of the product's lineage (the one that made it or made its inputs)"),
    "step_version": ("version", "e.g. 1.0", "the step's version"),
    "parameter": ("Parameter", "name = value, e.g. radius_deg = 0.1",
                  "a parameter value of any step of the product's lineage (; between several)"),
}  # fmt: skip

ANY = "(any)"


class ProductFields:
    """The widgets of the product section and how they read into criteria."""

    def __init__(self) -> None:
        style = {"description_width": "80px"}
        self.level = w.Dropdown(description="Data level", options=[ANY, *DATA_LEVELS[3:]],
                                value=ANY, style=style, layout=w.Layout(width="200px"),
                                tooltip="DL3 datasets, DL4/DL5 published products")  # fmt: skip
        self.kind = w.Combobox(description="Product kind", placeholder="counts, flux, spectrum, lightcurve",
                               options=[], ensure_option=False, continuous_update=False,
                               style=style, layout=w.Layout(width="260px"),
                               tooltip="end of dataproduct_subtype: counts, flux (flux points), spectrum, "
                               "lightcurve, fit; the list holds the archive's kinds")  # fmt: skip
        self.texts = {
            name: w.Text(description=label, placeholder=hint, tooltip=tip, style=style,
                         continuous_update=False,
                         layout=w.Layout(width="330px" if name == "parameter" else "230px"))
            for name, (label, hint, tip) in PRODUCT_TEXTS.items()
        }  # fmt: skip
        for name, box in (("data_level", self.level), ("product_kind", self.kind),
                          *self.texts.items()):  # fmt: skip
            box.add_class(f"ctanb-{name.replace('_', '-')}")
        t = self.texts
        self.box = w.VBox([
            w.HBox([self.level, self.kind, t["derived_from_run"]]),
            w.HBox([t["software"], t["software_version"]]),
            w.HBox([t["step"], t["step_version"]]),
            t["parameter"],
        ])  # fmt: skip

    @property
    def widgets(self) -> list[w.Widget]:
        """Every input of the section (for the buttons that carry the form's edits)."""
        return [self.level, self.kind, *self.texts.values()]

    def names(self) -> tuple[str, ...]:
        """The criteria this section sets."""
        return ("data_level", "product_kind", *self.texts)

    def read(self) -> dict[str, Any]:
        """The section's criteria (empty boxes are left out)."""
        out: dict[str, Any] = {}
        if self.level.value not in (None, "", ANY):
            out["data_level"] = self.level.value
        if self.kind.value.strip():
            out["product_kind"] = self.kind.value.strip()
        for name, box in self.texts.items():
            if box.value.strip():
                out[name] = box.value.strip()
        return out

    def set(self, name: str, text: str) -> None:
        """Fill the box of criterion *name* with *text* (``""`` empties it)."""
        if name == "data_level":
            text = text.upper()
            if text and text not in self.level.options:
                self.level.options = [*self.level.options, text]
            self.level.value = text or ANY
        elif name == "product_kind":
            self.kind.value = text
        else:
            self.texts[name].value = text

    def clear(self) -> None:
        """Empty every box."""
        for name in self.names():
            self.set(name, "")

    def set_kinds(self, subtypes: list[str]) -> None:
        """Offer the product kinds of the archive's DL4/DL5 ``dataproduct_subtype`` values."""
        kinds = sorted({s.split("-", 1)[1] for s in subtypes
                        if s[:3] in ("DL4", "DL5") and "-" in s})  # fmt: skip
        self.kind.options = kinds
