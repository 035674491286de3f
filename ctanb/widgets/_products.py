"""Product rows of the App's results: open one in the provenance panel, send a spectrum
(a checked spectrum/SED row, or the flux-point product the provenance panel shows).

The App keeps one-line methods (``open_product``, ``selected_spectrum``); the logic is
here so the App's module stays about layout. A product row is an ObsCore row of a
published product (``calib_level`` 3 or more: DL4, DL5); its bytes are fetched through
the archive's session, so the archive's rights apply as for any download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import CtanbError

__all__ = ["has_spectrum", "open_product", "selected_product", "spectrum_to_send"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _selected_rows(app: Any) -> list[Any]:
    table = app.table.table
    if table is None:
        return []
    return [table[i] for i in sorted(app.table.selected_rows) if 0 <= i < len(table)]


def _is_product(row: Any) -> bool:
    names = row.colnames if hasattr(row, "colnames") else ()
    if "obs_publisher_did" not in names:
        return False
    level = row["calib_level"] if "calib_level" in names else None
    subtype = _text(row["dataproduct_subtype"]) if "dataproduct_subtype" in names else ""
    try:
        return int(level) >= 3 or subtype[:3] in ("DL4", "DL5")
    except (TypeError, ValueError):
        return subtype[:3] in ("DL4", "DL5")


def selected_product(app: Any) -> Any:
    """The one checked row of the results that is a published product."""
    rows = [r for r in _selected_rows(app) if _is_product(r)]
    if not rows:
        raise CtanbError("check the row of a published product (DL4/DL5) in the results first")
    if len(rows) > 1:
        raise CtanbError(f"{len(rows)} product rows are checked: check one to open it")
    return rows[0]


def open_product(app: Any, row: Any = None):
    """Show the checked product row (or *row*) in the provenance panel, from the archive."""
    row = selected_product(app) if row is None else row
    graph = app.provenance.open_published(_text(row["obs_publisher_did"]), app.search.archive)
    titles = list(app.tabs.titles)
    if "Provenance" in titles:
        app.tabs.selected_index = titles.index("Provenance")
    return graph


def _row_is_spectrum(app: Any) -> bool:
    from ..samp.spectrum import is_spectrum_product

    rows = _selected_rows(app)
    return len(rows) == 1 and is_spectrum_product(rows[0])


def _shown_flux_points(app: Any) -> Path | None:
    """The product file the provenance panel shows, when it holds flux points."""
    from ..samp.spectrum import spectrum_table

    product = getattr(app.provenance, "product", "")
    if not product or product.startswith("ivo://") or not Path(product).is_file():
        return None
    try:
        spectrum_table(product)
    except CtanbError:
        return None
    return Path(product)


def has_spectrum(app: Any) -> bool:
    """True when one checked row is a spectrum/SED product, or the provenance panel shows
    a flux-point product file."""
    return _row_is_spectrum(app) or _shown_flux_points(app) is not None


def spectrum_to_send(app: Any) -> dict[str, Any] | None:
    """What "Send spectrum" sends: the checked spectrum/SED product (fetched from the
    archive), else the flux-point product the provenance panel shows."""
    if not _row_is_spectrum(app):
        path = _shown_flux_points(app)
        return None if path is None else {"source": path, "name": path.stem, "target": "",
                                          "did": app.provenance.published_did}  # fmt: skip
    row = _selected_rows(app)[0]
    archive = app.search.archive
    url = _text(row["access_url"])
    try:
        resp = archive.session.get(url, timeout=120)
    except Exception as exc:  # requests' errors: the archive is out of reach
        raise CtanbError(f"cannot fetch the spectrum from {url}: {exc}") from None
    if resp.status_code != 200:
        raise CtanbError(f"the archive refused the spectrum: {resp.text.strip()[:300]}")
    names = row.colnames
    return {
        "source": resp.content,
        "name": _text(row["obs_title"]) if "obs_title" in names else "spectrum",
        "target": _text(row["target_name"]) if "target_name" in names else "",
        "did": _text(row["obs_publisher_did"]),
    }
