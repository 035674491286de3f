"""Light curves of PKS 2155-304 from H.E.S.S. DR1 runs, per run and per night, with provenance."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from ctanb import AnalysisError
from ctanb._settings import release_dir
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.lightcurve import LightCurveConfig, LightCurveStep
from ctanb.provenance import read_provenance

# Two runs on the night of MJD 54705 and one on the next night.
RUNS = (47802, 47803, 47827)
PKS2155 = LightCurveConfig(
    ra_deg=329.71694,
    dec_deg=-30.22559,
    source="pks2155",
    spectral_index=3.4,
    energy_edges_tev=[0.7, 10],
    energy_min_tev=10**-0.5,
    energy_max_tev=31.6,
    energy_bins_per_decade=4,
    energy_true_min_tev=0.2,
    energy_true_max_tev=50,
    energy_true_bins_per_decade=5,
)


@pytest.fixture(scope="module")
def inputs(prov_store_url):
    return inputs_from_datastore(release_dir("hess-dl3-dr1"), RUNS)


def test_light_curve_per_run_has_sensible_fluxes_and_provenance(inputs, tmp_path):
    from gammapy.estimators import FluxPoints

    result = LightCurveStep(PKS2155).run(inputs, out=tmp_path)
    table = result.table
    assert len(table) == len(RUNS)
    flux = np.asarray(table["flux"]).ravel()
    error = np.asarray(table["flux_err"]).ravel()
    # PKS 2155-304 in 2008 above 0.7 TeV: a few 1e-12 cm-2 s-1, detected in every run
    assert np.all((flux > 5e-13) & (flux < 5e-11)), flux
    assert np.all((error > 0) & (error < flux)), error
    assert np.all(np.asarray(table["time_max"]) > np.asarray(table["time_min"]))
    path = result.products["lightcurve"]
    again = FluxPoints.read(path, format="lightcurve")
    np.testing.assert_allclose(np.ravel(again.flux.data), flux, rtol=1e-6)
    assert fits.getheader(path)["PROV_TYP"] == "lightcurve"
    graph = read_provenance(path)
    assert {e.obs_id for e in graph.entities.values() if e.data_level == "DL3"} == {
        str(r) for r in RUNS
    }
    assert "3 run bin(s)" in result._repr_html_()
    ax = result.plot()
    assert ax.lines or ax.collections


def test_light_curve_per_night_groups_runs_by_night(inputs, tmp_path):
    result = LightCurveStep(PKS2155.model_copy(update={"time_bins": "night"})).run(
        inputs, out=tmp_path
    )
    table = result.table
    assert len(table) == 2
    first, second = table[0], table[1]
    assert int(first["time_min"]) == 54705 and int(second["time_min"]) == 54706
    # the first night spans both of its runs (about 2 x 28 min)
    assert (first["time_max"] - first["time_min"]) * 24 * 60 > 50
    assert "2 night bin(s)" in result._repr_html_()


def test_light_curve_of_a_target_outside_the_field_names_the_offsets(inputs, tmp_path):
    step = LightCurveStep(PKS2155.model_copy(update={"dec_deg": -40.0}))
    with pytest.raises(AnalysisError, match=r"outside the field of view.*47802: offset"):
        step.run(inputs[:1], out=tmp_path)
