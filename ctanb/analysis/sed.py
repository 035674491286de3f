"""SEDs: flux points with the fitted model and its butterfly, flux-point I/O, multi-wavelength SED.

All plotting is gammapy's (``FluxPoints.plot``, ``SpectralModel.plot`` and
``plot_error`` for the butterfly); ctanb only lays the pieces out::

    from ctanb.analysis.sed import MultiWavelengthSED
    sed = MultiWavelengthSED.from_catalogs(result)   # result of SpectrumStep.run
    sed.plot(); sed.table                            # points with references
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import AnalysisError

__all__ = [
    "MultiWavelengthSED",
    "covariance_file",
    "fit_summary_html",
    "plot_sed",
    "read_flux_points",
    "reference_model_file",
    "write_flux_points",
]


def covariance_file(models_file: str | Path) -> Path:
    """The covariance file gammapy's ``Models.write`` puts beside *models_file*."""
    path = Path(models_file)
    return path.with_name(f"{path.stem}_covariance.dat")


def read_flux_points(
    path: str | Path, *, format: str | None = None, reference_model: Any = None
) -> Any:
    """Read flux points or a light curve written by :func:`write_flux_points`.

    Parameters
    ----------
    path : path
        A FITS file in gammapy's ``gadf-sed`` or ``lightcurve`` format.
    format : str, optional
        ``"gadf-sed"`` or ``"lightcurve"``; default from the table's columns.
    reference_model : SkyModel or SpectralModel, optional
        Default the model named by the file's ``MODEL`` keyword (a YAML file beside
        it, read with its covariance), so dN/dE and the model butterfly are those of
        the flux points that were written.

    Returns
    -------
    gammapy.estimators.FluxPoints
        The flux points (or light curve) with their reference model.

    Raises
    ------
    AnalysisError
        The file does not exist or holds no flux points gammapy can read.
    """
    from astropy.io import fits
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import Models

    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"flux-points file {path} does not exist")
    try:
        with fits.open(path) as hdus:
            model_name = hdus[0].header.get("MODEL")
            model_key = hdus[0].header.get("MODELNAM")  # one model of several in the file
            columns = hdus["FLUXPOINTS"].columns.names
        if format is None:
            format = "lightcurve" if "time_min" in columns else "gadf-sed"
        if reference_model is None and model_name:
            model_path = path.parent / model_name
            if not model_path.is_file():
                raise AnalysisError(
                    f"the reference model {model_name} of flux points {path} is missing: "
                    "keep it in the same folder"
                )
            from . import energy_scale  # noqa: F401  (registers its spectral model)

            models = Models.read(model_path)
            reference_model = models[model_key] if model_key in models.names else models[0]
        return FluxPoints.read(path, format=format, reference_model=reference_model)
    except (OSError, KeyError, ValueError) as exc:
        raise AnalysisError(f"cannot read flux points from {path}: {exc}") from None


def write_flux_points(
    flux_points: Any,
    path: str | Path,
    *,
    sed_type: str = "likelihood",
    format: str = "gadf-sed",
    model_file: str | Path | None = None,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Write flux points (``gadf-sed``) or a light curve (``lightcurve``) with its reference model.

    Parameters
    ----------
    flux_points : gammapy.estimators.FluxPoints
    path : path
        The FITS file.
    sed_type : str
        ``likelihood`` (default) keeps the norm profiles; ``dnde``, ``flux``, ...
    format : str
        ``"gadf-sed"`` or ``"lightcurve"``.
    model_file : path, optional
        A models YAML file already written beside *path* whose first model is the
        reference model (e.g. the fitted models); default: the reference model is
        written to ``<stem>_model.yaml`` with its covariance. The FITS primary
        header names the file in ``MODEL`` (relative to the FITS file), as
        gammapy's ``FluxMaps.write`` does, and :func:`read_flux_points` reads it.
    header : mapping, optional
        More primary-header cards (e.g. the energy range really fitted).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    AnalysisError
        *model_file* is not in the folder of *path* (the file names it relatively).
    """
    from astropy.io import fits
    from gammapy.modeling.models import Models

    path = Path(path)
    if model_file is None:
        model_file = reference_model_file(path)
        Models([flux_points.reference_model]).write(
            model_file, overwrite=True, write_covariance=True
        )
    model_file = Path(model_file)
    if model_file.parent.resolve() != path.parent.resolve():
        raise AnalysisError(f"the reference model {model_file} must be beside {path}")
    flux_points.write(path, sed_type=sed_type, format=format, overwrite=True)
    with fits.open(path, mode="update") as hdus:
        hdus[0].header["MODEL"] = model_file.name  # the reference model, beside this file
        hdus[0].header.update(header or {})
    return path


def reference_model_file(path: str | Path) -> Path:
    """Where :func:`write_flux_points` writes the reference model of flux points *path*."""
    path = Path(path)
    return path.with_name(f"{path.stem}_model.yaml")


def plot_sed(
    flux_points: Any = None,
    model: Any = None,
    *,
    ax: Any = None,
    sed_type: str = "e2dnde",
    energy_bounds: Any = None,
    label: str | None = None,
    color: str | None = None,
) -> Any:
    """Plot bin-by-bin flux points and a fitted model with its error butterfly.

    Parameters
    ----------
    flux_points : gammapy.estimators.FluxPoints, optional
    model : gammapy SkyModel or SpectralModel, optional
        The butterfly is ``plot_error`` of the spectral model (its covariance).
    ax : matplotlib Axes, optional
    sed_type : str
        ``"e2dnde"`` (default), ``"dnde"``, ``"flux"`` or ``"eflux"``.
    energy_bounds : Quantity, optional
        Energy range of the model curve; default that of the flux points.
    label : str, optional
        Legend label.
    color : str, optional
        Matplotlib colour of the points and the model.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    AnalysisError
        Neither flux points nor a model given.
    """
    import astropy.units as u
    import matplotlib.pyplot as plt

    if flux_points is None and model is None:
        raise AnalysisError("nothing to plot: give flux points and/or a model")
    ax = ax if ax is not None else plt.figure(figsize=(7, 5)).gca()
    spectral = getattr(model, "spectral_model", model)
    name = label or getattr(model, "name", None) or "ctanb"
    if energy_bounds is None:
        if flux_points is not None:
            energy_bounds = u.Quantity([flux_points.energy_min[0], flux_points.energy_max[-1]])
        else:
            energy_bounds = [0.1, 100] * u.TeV
    if spectral is not None:
        spectral.plot(energy_bounds, ax=ax, sed_type=sed_type, label=f"{name} model", color=color)
        # model, butterfly and points in one colour: the one the model line got
        color = color or ax.get_lines()[-1].get_color()
        spectral.plot_error(energy_bounds, ax=ax, sed_type=sed_type, facecolor=color)
    if flux_points is not None:
        flux_points.plot(ax=ax, sed_type=sed_type, label=f"{name} flux points", color=color)
    fit_view(ax)
    ax.legend(loc="best", fontsize="small")
    return ax


def fit_view(ax: Any, *, margin: float = 1.5) -> Any:
    """Set log-axis limits that show every line, marker, error bar and band on *ax*.

    gammapy sets the x range of each plot call to that call's energy range, so the
    last one drawn (e.g. TeV points over Fermi-LAT ones) would hide the others.
    """
    import numpy as np
    from matplotlib.collections import LineCollection

    xs, ys = [], []
    for line in ax.get_lines():
        data = np.asarray(line.get_xydata(), dtype=float)
        if data.size:
            xs.append(data[:, 0])
            ys.append(data[:, 1])
    for collection in ax.collections:
        # error bars count for the energy range only: a lower error as large as the
        # value reaches down to ~0 and would squash the log axis
        bars = isinstance(collection, LineCollection)
        for path in collection.get_paths():
            data = np.asarray(path.vertices, dtype=float)
            if data.size:
                xs.append(data[:, 0])
                ys.append(data[:0, 1] if bars else data[:, 1])
    if not xs:
        return ax
    x, y = np.concatenate(xs), np.concatenate(ys)
    x, y = x[np.isfinite(x) & (x > 0)], y[np.isfinite(y) & (y > 0)]
    if x.size:
        ax.set_xlim(x.min() / margin, x.max() * margin)
    if y.size:
        ax.set_ylim(y.min() / margin, y.max() * margin)
    return ax


def _fmt(value: float, error: float) -> str:
    return f"{value:.4g} ± {error:.2g}" if error == error and error > 0 else f"{value:.4g}"


def fit_summary_html(models: Any, fit_result: Any = None, flux_points: Any = None) -> str:
    """An HTML table of fitted parameters with errors, the fit status and flux-point TS."""
    parts = []
    if fit_result is not None:
        parts.append(
            f"<p>fit: <b>{'converged' if fit_result.success else 'FAILED'}</b> "
            f"({html.escape(str(fit_result.message))}), total stat "
            f"{fit_result.total_stat:.2f}</p>"
        )
    if models is not None:
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{_fmt(p.value, p.error)}</td>"
            f"<td>{html.escape(str(p.unit))}</td><td>{'frozen' if p.frozen else ''}</td></tr>"
            for p in models.parameters
        )
        parts.append(
            f"<table><tr><th>parameter</th><th>value</th><th>unit</th><th></th></tr>{rows}</table>"
        )
    if flux_points is not None:
        table = flux_points.to_table(sed_type="dnde", formatted=False)
        rows = "".join(
            f"<tr><td>{row['e_min']:.3g}–{row['e_max']:.3g}</td><td>{row['dnde']:.3e}</td>"
            f"<td>{row['ts'] if 'ts' in table.colnames else float('nan'):.1f}</td></tr>"
            for row in table
        )
        parts.append(
            "<table><tr><th>energy (TeV)</th><th>dnde (cm-2 s-1 TeV-1)</th><th>TS</th></tr>"
            f"{rows}</table>"
        )
    return "".join(parts)


#: ctanb's own points, model and butterfly on a multi-wavelength SED ...
OWN_COLOR = "black"
#: ... and the catalogs' points: none of them black or grey (tab10 without its grey)
CATALOG_COLORS = tuple(f"C{i}" for i in range(10) if i != 7)


@dataclass
class MultiWavelengthSED:
    """A ctanb spectrum overlaid with catalog and archival flux points.

    Build it with :meth:`from_catalogs`; :attr:`table` lists every point with the
    catalog, source and reference to cite; :meth:`plot` draws them all.

    Parameters
    ----------
    flux_points : gammapy.estimators.FluxPoints, optional
        ctanb's own flux points.
    model : gammapy spectral model, optional
        ctanb's fitted spectral model (drawn with its butterfly).
    label : str
        The legend label of ctanb's points.
    catalog_spectra : list of CatalogSpectrum
        The catalog and archival spectra to overlay.
    """

    flux_points: Any = None
    model: Any = None
    label: str = "ctanb"
    catalog_spectra: list[Any] = field(default_factory=list)

    @classmethod
    def from_catalogs(
        cls,
        result: Any = None,
        *,
        ra_deg: float | None = None,
        dec_deg: float | None = None,
        radius_deg: float = 0.1,
        catalogs: Sequence[str] = ("3fgl", "3fhl", "gamma-cat"),
        label: str = "ctanb",
    ) -> MultiWavelengthSED:
        """Catalog spectra around a ctanb result's target (or a given position).

        Parameters
        ----------
        result : SpectrumResult, optional
            Its flux points, fitted model and target position are used.
        ra_deg, dec_deg : float, optional
            The position when no result is given (or to override it).
        radius_deg : float
            How far from the position a catalog source may be (degrees).
        catalogs : sequence of str
            The catalogs to look in (``3fgl``, ``3fhl``, ``gamma-cat``, ``hgps``).
        label : str
            The legend label of ctanb's own points.

        Returns
        -------
        MultiWavelengthSED
            ctanb's spectrum with the catalog spectra found.

        Raises
        ------
        AnalysisError
            Neither a result nor a position is given.
        """
        from .catalogs import catalog_spectra

        config = getattr(result, "config", None)
        ra = ra_deg if ra_deg is not None else getattr(config, "ra_deg", None)
        dec = dec_deg if dec_deg is not None else getattr(config, "dec_deg", None)
        if ra is None or dec is None:
            raise AnalysisError("multi-wavelength SED: give a result or ra_deg/dec_deg")
        spectra = catalog_spectra(ra, dec, radius_deg=radius_deg, catalogs=tuple(catalogs))
        return cls(
            flux_points=_points_of(result),
            model=getattr(result, "model", None) if result is not None else None,
            label=label,
            catalog_spectra=spectra,
        )

    @property
    def table(self) -> Any:
        """Every point as E, E²dN/dE (erg cm-2 s-1) with errors, upper-limit flag and reference.

        Raises
        ------
        AnalysisError
            The SED has no points at all.
        """
        import astropy.units as u
        import numpy as np
        from astropy.table import Table, vstack

        pieces = [(self.label, "ctanb", "this analysis (ctanb / gammapy)", self.flux_points)]
        pieces += [
            (s.source_name, s.catalog, s.reference, s.flux_points) for s in self.catalog_spectra
        ]
        tables = []
        for source, catalog, reference, points in pieces:
            if points is None:
                continue
            t = points.to_table(sed_type="e2dnde", formatted=False)
            n = len(t)

            def col(name: str, unit: str, t: Any = t, n: int = n) -> Any:
                if name in t.colnames:
                    return u.Quantity(t[name]).to_value(unit)
                return np.full(n, np.nan)

            is_ul = np.asarray(t["is_ul"], bool) if "is_ul" in t.colnames else np.zeros(n, bool)
            tables.append(
                Table(
                    {
                        "catalog": [catalog] * n,
                        "source": [source] * n,
                        "e_ref": col("e_ref", "TeV") * u.TeV,
                        "e_min": col("e_min", "TeV") * u.TeV,
                        "e_max": col("e_max", "TeV") * u.TeV,
                        "e2dnde": col("e2dnde", "erg cm-2 s-1") * u.Unit("erg cm-2 s-1"),
                        "e2dnde_err": col("e2dnde_err", "erg cm-2 s-1") * u.Unit("erg cm-2 s-1"),
                        "e2dnde_ul": col("e2dnde_ul", "erg cm-2 s-1") * u.Unit("erg cm-2 s-1"),
                        "is_ul": is_ul,
                        "reference": [reference] * n,
                    }
                )
            )
        if not tables:
            raise AnalysisError("multi-wavelength SED has no points")
        table = vstack(tables)
        table.meta["comment"] = "cite the reference of each row when using its points"
        return table

    def plot(self, ax: Any = None, *, sed_type: str = "e2dnde") -> Any:
        """Draw the catalog points and the ctanb spectrum (points and butterfly) on one SED.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: a new figure).
        sed_type : str
            gammapy's SED type (``e2dnde``, ``dnde``, ``flux``, ...).

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.
        """
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.figure(figsize=(8, 5.5)).gca()
        markers = "sD^v<>ph*"
        for index, spectrum in enumerate(self.catalog_spectra):
            spectrum.flux_points.plot(
                ax=ax,
                sed_type=sed_type,
                label=spectrum.label,
                color=CATALOG_COLORS[index % len(CATALOG_COLORS)],
                marker=markers[index % len(markers)],
            )
        if self.flux_points is not None or self.model is not None:
            plot_sed(
                self.flux_points,
                self.model,
                ax=ax,
                sed_type=sed_type,
                label=self.label,
                color=OWN_COLOR,
            )
        fit_view(ax)
        ax.legend(loc="best", fontsize="x-small")
        return ax

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s.label)}</td><td>{len(s.flux_points.energy_ref)}</td>"
            f"<td>{html.escape(s.reference)}</td></tr>"
            for s in self.catalog_spectra
        )
        return (
            f"<b>MultiWavelengthSED</b> ({html.escape(self.label)} + "
            f"{len(self.catalog_spectra)} catalog spectra)<table><tr><th>catalog source</th>"
            f"<th>points</th><th>reference</th></tr>{rows}</table>"
        )


def _points_of(result: Any) -> Any:
    """The result's flux points, for a joint energy-scale fit in its model's scale."""
    moved = getattr(result, "flux_points_intrinsic", None)
    if moved:
        return next(iter(moved.values()))
    return getattr(result, "flux_points", None)
