"""SED plots (flux points + butterfly), flux-point I/O and the multi-wavelength Crab SED."""

from __future__ import annotations

import numpy as np
import pytest

from ctanb import AnalysisError
from ctanb._settings import release_dir
from ctanb.analysis.catalogs import catalog_spectra
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.sed import MultiWavelengthSED, plot_sed, read_flux_points, write_flux_points
from ctanb.analysis.spectrum import SpectrumConfig, SpectrumStep


@pytest.fixture(scope="module")
def crab(tmp_path_factory, prov_store_url):
    """A quick one-run H.E.S.S. Crab spectrum (power law, three flux points)."""
    config = SpectrumConfig(
        ra_deg=83.633,
        dec_deg=22.0145,
        source="crab",
        energy_min_tev=1,
        energy_max_tev=31.6,
        energy_bins_per_decade=4,
        energy_true_min_tev=0.3,
        energy_true_max_tev=60,
        energy_true_bins_per_decade=4,
        flux_points_edges_tev=[1, 3.16, 10, 31.6],
        flux_points_optional=[],
    )
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), [23523])
    return SpectrumStep(config).run(inputs, out=tmp_path_factory.mktemp("crab"))


def test_sed_plot_draws_points_model_and_butterfly(crab):
    ax = plot_sed(crab.flux_points, crab.model)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "crab model" in labels and "crab flux points" in labels
    assert ax.collections, "plot_error draws the butterfly as a filled band"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(AnalysisError, match="nothing to plot"):
        plot_sed()


def test_flux_points_round_trip_in_gadf_sed_format(crab, tmp_path):
    path = write_flux_points(crab.flux_points, tmp_path / "points.fits", sed_type="dnde")
    again = read_flux_points(path)
    np.testing.assert_allclose(again.dnde.data, crab.flux_points.dnde.data, rtol=1e-6)
    with pytest.raises(AnalysisError, match="does not exist"):
        read_flux_points(tmp_path / "missing.fits")


def test_multiwavelength_crab_sed_has_fermi_and_gammacat_points_with_references(crab):
    sed = MultiWavelengthSED.from_catalogs(crab)
    table = sed.table
    catalogs = set(table["catalog"])
    assert {"ctanb", "3fgl", "3fhl", "gamma-cat"} <= catalogs
    assert len(table[table["catalog"] == "ctanb"]) == 3
    references = " ".join(set(table["reference"]))
    assert "Acero et al. 2015" in references and "Ajello et al. 2017" in references
    assert "gamma-cat" in references
    # Fermi points lie at GeV energies, below the H.E.S.S. points, all with positive fluxes
    fermi = table[table["catalog"] == "3fgl"]
    assert fermi["e_ref"].max() < 1 and np.all(fermi["e2dnde"][~fermi["is_ul"]] > 0)
    ax = sed.plot()
    labels = " ".join(text.get_text() for text in ax.get_legend().get_texts())
    assert "3FHL" in labels and "gamma-cat" in labels and "ctanb flux points" in labels
    assert "Acero" in sed._repr_html_()


def test_catalog_search_far_from_any_source_is_an_error():
    with pytest.raises(AnalysisError, match="no source with flux points"):
        catalog_spectra(0.0, -89.0, radius_deg=0.01)


def test_multiwavelength_sed_shows_every_point_and_own_colour_is_unique(crab):
    """On the rendered figure: the axes contain every catalog and ctanb point (the Fermi-LAT
    GeV points too), and ctanb's points, model and butterfly share no colour with a catalog."""
    import astropy.units as u
    from matplotlib.colors import to_rgba

    sed = MultiWavelengthSED.from_catalogs(crab)
    ax = sed.plot()
    ax.figure.canvas.draw()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    table = sed.table
    x = u.Quantity(table["e_ref"]).to_value(ax.xaxis.get_units())
    flux = np.where(table["is_ul"], table["e2dnde_ul"], table["e2dnde"])
    y = u.Quantity(flux, table["e2dnde"].unit).to_value(ax.yaxis.get_units())
    shown = np.isfinite(y) & (y > 0)
    assert shown.sum() > 20 and (table["catalog"][shown] == "3fgl").sum() > 5
    inside = (x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)
    hidden = table[shown & ~inside]
    assert len(hidden) == 0, f"points outside the plotted range: {hidden['catalog', 'e_ref']}"
    # the lowest Fermi-LAT energy and the highest H.E.S.S. one are on the axis
    assert x0 <= x.min() and x.max() <= x1
    handles, labels = ax.get_legend_handles_labels()
    lines = [h[0] if isinstance(h, tuple) else h for h in handles]  # errorbar containers
    colours = {label: to_rgba(line.get_color()) for line, label in zip(lines, labels, strict=True)}
    own = {v for k, v in colours.items() if k.startswith("ctanb")}
    catalogs = {v for k, v in colours.items() if not k.startswith("ctanb")}
    assert len(catalogs) >= 4 and len(own) == 1, colours
    assert not own & catalogs, "ctanb's points share a colour with a catalog entry"
    band = [to_rgba(c.get_facecolor()[0]) for c in ax.collections if len(c.get_facecolor())]
    assert any(colour[:3] == next(iter(own))[:3] for colour in band), "butterfly in ctanb's colour"
