"""Exclusion masks in the reflected-regions steps (spectrum, light curve): the mask from DS9
regions or catalog sources equals plain gammapy's, the off regions avoid it exactly as
gammapy's ReflectedRegionsBackgroundMaker(exclusion_mask=...) does, the mask is a hashed
input of the reduction, and bad masks give clear errors that keep what was made."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
import yaml

from ctanb import AnalysisError
from ctanb._settings import release_dir
from ctanb.analysis import EXAMPLES
from ctanb.analysis.inputs import inputs_from_datastore
from ctanb.analysis.lightcurve import LightCurveConfig, LightCurveStep
from ctanb.analysis.spectrum import SpectrumConfig, SpectrumStep
from ctanb.analysis.spectrum_data import exclusion_geom
from ctanb.provenance import read_provenance
from ctanb.provenance._hashing import fits_product_sha256

CRAB_RUNS = (23523, 23526)
CRAB = {"ra_deg": 83.633, "dec_deg": 22.0145, "source": "crab"}
# gammapy's spectral-analysis tutorial: a 0.5 deg circle around the Crab kept out
CRAB_EXCLUSION = {"regions": ["icrs;circle(83.633,22.0145,0.5)"]}
SPECTRUM = SpectrumConfig(
    **CRAB,
    energy_min_tev=1,
    energy_max_tev=10,
    energy_bins_per_decade=4,
    energy_true_min_tev=0.5,
    energy_true_max_tev=20,
    energy_true_bins_per_decade=4,
    flux_points_edges_tev=[1, 10],
    flux_points_optional=[],
    exclusion=CRAB_EXCLUSION,
)
PKS_RUNS = (47802, 47803, 47827)


def _with_exclusion(exclusion):
    config = SPECTRUM.model_copy()
    config.exclusion = exclusion  # validated on assignment
    return config


def _plain_geom(config):
    from astropy.coordinates import SkyCoord
    from gammapy.maps import WcsGeom

    width = 4 * config.offset_max_deg + 2 * (config.on_radius_deg or 0)  # see exclusion_geom
    target = SkyCoord(config.ra_deg, config.dec_deg, unit="deg", frame="icrs")
    return target, WcsGeom.create(skydir=target, binsz=0.02, width=(width, width), frame="icrs")


def plain_gammapy_crab(files, exclusion: bool):
    """The spectrum of the gammapy tutorial, with or without its exclusion mask."""
    from gammapy.data import Observation
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom
    from gammapy.modeling import Fit
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    from regions import CircleSkyRegion

    target, geom = _plain_geom(SPECTRUM)
    mask = ~geom.region_mask([CircleSkyRegion(target, 0.5 * u.deg)])
    e_reco = MapAxis.from_energy_bounds(1, 10, 4, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.5, 20, 7, unit="TeV", name="energy_true")
    region = CircleSkyRegion(target, 0.11 * u.deg)
    empty = SpectrumDataset.create(
        RegionGeom.create(region, axes=[e_reco]), energy_axis_true=e_true
    )
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])
    background = ReflectedRegionsBackgroundMaker(exclusion_mask=mask if exclusion else None)
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10, offset_max=2.5 * u.deg)
    datasets = Datasets()
    for path in files:
        obs = Observation.read(path)
        dataset = maker.run(empty.copy(name=str(obs.obs_id)), obs)
        datasets.append(safe.run(background.run(dataset, obs), obs))
    model = PowerLawSpectralModel(index=2, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV")
    datasets.models = [SkyModel(spectral_model=model, name="crab")]
    assert Fit().run(datasets).success
    return mask, datasets


@pytest.fixture(scope="module")
def crab(prov_store_url, tmp_path_factory):
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS)
    return SpectrumStep(SPECTRUM).run(inputs, out=tmp_path_factory.mktemp("crab"))


def test_spectrum_with_exclusion_equals_plain_gammapy(crab):
    from gammapy.maps import Map

    files = [str(item.events) for item in crab.inputs]
    mask, theirs = plain_gammapy_crab(files, exclusion=True)
    _, unmasked = plain_gammapy_crab(files, exclusion=False)
    ours_mask = Map.read(crab.products["exclusion_mask"])
    assert ours_mask.geom == mask.geom
    np.testing.assert_array_equal(ours_mask.data.astype(bool), mask.data)
    for ours, plain, free in zip(crab.datasets, theirs, unmasked, strict=True):
        np.testing.assert_array_equal(ours.counts_off.data, plain.counts_off.data)
        np.testing.assert_allclose(ours.acceptance_off.data, plain.acceptance_off.data, rtol=1e-6)
        # what a user notices: the mask takes the reflected regions next to the Crab away
        assert ours.acceptance_off.data.max() < free.acceptance_off.data.max()
    for ours, plain in zip(crab.models.parameters, theirs.models.parameters, strict=True):
        np.testing.assert_allclose(ours.value, plain.value, rtol=1e-6, err_msg=ours.name)
        np.testing.assert_allclose(ours.error, plain.error, rtol=1e-5, err_msg=ours.name)


def test_mask_is_a_hashed_input_of_the_reduction(crab):
    graph = read_provenance(crab.products["flux_points"])
    mask_file = crab.products["exclusion_mask"].resolve()
    digest = fits_product_sha256(mask_file).sha256
    masks = [e for e in graph.entities.values() if e.location == str(mask_file)]
    assert len(masks) == 1 and masks[0].data_sha256 == digest
    reduction = next(a for a in graph.activities.values() if a.name == "spectrum-datasets")
    assert any(r.entity_id == masks[0].id for r in reduction.used)
    assert "exclusion-mask" in {a.name for a in graph.activities.values()}
    assert reduction.config["__model__"][1]["exclusion"]["regions"] == CRAB_EXCLUSION["regions"]


def test_light_curve_with_catalog_exclusion_equals_plain_gammapy(prov_store_url, tmp_path):
    """The packaged PKS 2155-304 example with the gamma-cat sources excluded."""
    from gammapy.catalog import SourceCatalogGammaCat
    from gammapy.maps import Map
    from regions import CircleSkyRegion
    from test_analysis_lightcurve import plain_gammapy_light_curve

    from ctanb.analysis.catalogs import catalog_path

    section = yaml.safe_load(EXAMPLES["pks2155_lightcurve"].read_text())["light_curve"]
    section["exclusion"] = {"catalogs": ["gamma-cat"], "radius": "0.4 deg"}
    config = LightCurveConfig.from_dict(section)
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), PKS_RUNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = LightCurveStep(config).run(inputs, out=tmp_path)
    _, geom = _plain_geom(config)
    catalog = SourceCatalogGammaCat(catalog_path("gamma-cat"))
    regions = [CircleSkyRegion(position, 0.4 * u.deg) for position in catalog.positions]
    mask = ~geom.region_mask(regions)
    ours_mask = Map.read(result.products["exclusion_mask"]).data.astype(bool)
    np.testing.assert_array_equal(ours_mask, mask.data)
    assert (~mask.data).sum() > 1000, "PKS 2155-304 is in gamma-cat: its circle is excluded"
    theirs = plain_gammapy_light_curve(section, inputs, exclusion_mask=mask)
    ours = result.lightcurve
    for name in ("flux", "flux_err", "flux_ul", "ts"):
        np.testing.assert_allclose(
            getattr(ours, name).data, getattr(theirs, name).data, rtol=1e-6, err_msg=name
        )
    plain = plain_gammapy_light_curve(section, inputs)
    assert not np.allclose(ours.flux_err.data, plain.flux_err.data, rtol=1e-6, atol=0)
    graph = read_provenance(result.products["lightcurve"])
    mask_file = str(result.products["exclusion_mask"].resolve())
    assert any(e.location == mask_file and e.data_sha256 for e in graph.entities.values())


def test_mask_leaving_no_off_region_names_the_exclusion_and_keeps_the_mask(
    prov_store_url, tmp_path
):
    # the runs point 0.5 deg from the Crab: every reflected region lies 0.2-1.2 deg from it,
    # all inside this annulus (the map beyond it is not excluded)
    config = _with_exclusion({"regions": ["icrs;annulus(83.633,22.0145,0.2,1.2)"]})
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS[:1])
    with pytest.raises(AnalysisError, match=r"no off region found .*exclusion\.radius") as caught:
        SpectrumStep(config).run(inputs, out=tmp_path)
    assert "Traceback" not in str(caught.value)
    assert (tmp_path / "exclusion_mask.fits").is_file(), "the mask already made is kept"


def test_mask_excluding_everything_is_an_error(prov_store_url, tmp_path):
    config = _with_exclusion({"regions": ["icrs;circle(83.633,22.0145,20)"]})
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS[:1])
    with pytest.raises(
        AnalysisError,
        match=r"excludes the whole map: the user region icrs;circle\(83\.633,22\.0145,20\) alone",
    ):
        SpectrumStep(config).run(inputs, out=tmp_path)
    assert not list(tmp_path.glob("spectrum_obs*.fits"))


def test_catalog_without_source_in_the_field_says_nothing_is_excluded(prov_store_url, tmp_path):
    from ctanb.analysis.masks import ExclusionWarning

    config = _with_exclusion({"catalogs": ["hgps"]})  # Crab: no HGPS
    geom = exclusion_geom(config)
    assert geom.wcs.width.width.to_value("deg") == pytest.approx(10.22)
    inputs = inputs_from_datastore(release_dir("hess-dl3-dr1"), CRAB_RUNS[:1])
    with pytest.warns(ExclusionWarning, match=r"no H\.E\.S\.S\. HGPS source .*nothing excluded"):
        result = SpectrumStep(config).run(inputs, out=tmp_path)
    assert result.fit_result.success and result.products["exclusion_mask"].is_file()
