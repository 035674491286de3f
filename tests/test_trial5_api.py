"""Findings of the fifth fresh-eyes trial on the Python API: every bad input is a
:class:`ctanb.CtanbError` whose message names the parameter and the value in the
user's words (no pydantic text, no bare TypeError from inside)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctanb
from ctanb import ConfigError, CriteriaError, CtanbError, DownloadError, NotFoundError, QueryError
from ctanb.analysis import LightCurveConfig, MapConfig, SpectrumConfig, SpectrumStep
from ctanb.client import Criteria

#: Text that would show pydantic or Python internals to the user.
INTERNALS = re.compile(
    r"Input should be|errors\.pydantic\.dev|pydantic|Traceback|NoneType|"
    r"unexpected keyword|object is not|has no attribute|invalid literal"
)
CRAB = {"ra_deg": 83.633, "dec_deg": 22.0145}
SKY = {"frame": "icrs", "lon": "0 deg", "lat": "0 deg"}


def _refused(call, error=CtanbError, *words):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert not INTERNALS.search(message), message
    for word in words:
        assert word in message, message
    return message


# --- finding 2: step configs built with keywords -------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"ra_deg": "83.6 deg", "dec_deg": 22}, ["ra_deg", "'83.6 deg'"]),
        ({}, ["ra_deg: missing", "dec_deg: missing"]),
        ({**CRAB, "energy_min_tev": 10, "energy_max_tev": 1}, ["energy_min_tev"]),
        (
            {**CRAB, "on_radus_deg": 0.1},
            ["on_radus_deg: unknown setting; did you mean on_radius_deg?"],
        ),
    ],
)
def test_step_config_keywords_raise_config_error(kwargs, words):
    message = _refused(lambda: SpectrumConfig(**kwargs), ConfigError, "SpectrumConfig", *words)
    assert message.startswith("invalid SpectrumConfig: ")


def test_config_error_is_still_a_value_error_and_assignment_is_checked():
    with pytest.raises(ValueError):  # what pydantic's error was: old except clauses hold
        LightCurveConfig(**CRAB, time_bins="hour")
    _refused(lambda: LightCurveConfig(**CRAB, time_bins="hour"), ConfigError, "time_bins", "'hour'")
    config = SpectrumConfig(**CRAB)

    def assign():
        config.dec_deg = 100

    _refused(assign, ConfigError, "dec_deg", "100")
    assert config.dec_deg == CRAB["dec_deg"]


def test_from_dict_and_step_refuse_what_is_not_a_mapping():
    _refused(lambda: SpectrumConfig.from_dict([1, 2]), ConfigError, "mapping", "[1, 2]")
    _refused(lambda: SpectrumStep("crab"), ConfigError, "mapping", "'crab'")


def test_nested_problems_are_named_once_by_key_path():
    message = _refused(
        lambda: MapConfig.from_dict(
            {"geom": {"wcs": {"skydir": SKY}}, "excess_map": {"correlation_radius": "-0.1 deg"}}
        ),
        ConfigError,
        "excess_map",
        "correlation_radius",
    )
    assert message.count("invalid") == 1, message


# --- finding 3: finite, ordered, of a size that fits in memory -------------------------
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: SpectrumConfig(**CRAB, energy_max_tev=math.inf), ["energy_max_tev", "finite"]),
        (lambda: SpectrumConfig.from_dict({**CRAB, "ra_deg": math.nan}), ["ra_deg", "finite"]),
        (
            lambda: SpectrumConfig(**CRAB, energy_bins_per_decade=10**7),
            ["energy_bins_per_decade", "at most 1000"],
        ),
        (
            lambda: SpectrumConfig(**CRAB, flux_points_edges_tev=[10, 1, 5]),
            ["flux_points_edges_tev", "increase", "10, 1, 5"],
        ),
        (
            lambda: LightCurveConfig(**CRAB, energy_edges_tev=[1.0, math.nan]),
            ["energy_edges_tev", "finite"],
        ),
        (
            lambda: MapConfig.from_dict({"geom": {"wcs": {"skydir": {**SKY, "lat": "100 deg"}}}}),
            ["geom.wcs.skydir.lat", "[-90, 90]", "100"],
        ),
        (
            lambda: MapConfig.from_dict(
                {"geom": {"wcs": {"skydir": SKY}}, "excess_map": {"correlation_radius": "-0.1 deg"}}
            ),
            ["correlation_radius", "positive", "-0.1 deg"],
        ),
        (
            lambda: MapConfig.from_dict(
                {
                    "geom": {"wcs": {"skydir": SKY}},
                    "background": {"method": "fov_background", "exclusion": "/nonexistent.fits"},
                }
            ),
            ["background.exclusion", "/nonexistent.fits"],
        ),
        (
            lambda: MapConfig.from_dict(
                {
                    "geom": {"wcs": {"skydir": SKY}},
                    "excess_map": {
                        "energy_edges": {"min": "1 TeV", "max": "10 TeV", "nbins": 10**8}
                    },
                }
            ),
            ["nbins", "at most 10000"],
        ),
    ],
)
def test_config_values_are_finite_ordered_and_bounded(make, words):
    _refused(make, ConfigError, *words)


def test_sane_configs_still_pass():
    assert SpectrumConfig(**CRAB, flux_points_edges_tev=[1, 3, 10]).flux_points_edges_tev == [
        1,
        3,
        10,
    ]
    assert MapConfig.from_dict({"geom": {"wcs": {"skydir": {**SKY, "lat": "-90 deg"}}}})


# --- findings 4, 10, 16: criteria -------------------------------------------------------
def test_an_empty_list_is_refused_not_dropped():
    # An empty selection must not become "the whole archive" (nor silently nothing).
    _refused(lambda: Criteria(obs_id=[]), CriteriaError, "obs_id", "empty")
    _refused(lambda: Criteria(collection=()), CriteriaError, "collection", "empty")


def test_time_gets_the_mjd_sanity_check_and_names_the_mistake():
    message = _refused(lambda: Criteria(time=2004), CriteriaError, "time:", "2004", "'2004-01-01'")
    assert "not an MJD" in message
    _refused(lambda: Criteria(time_start=2.0e8), CriteriaError, "time_start", "mission seconds")
    _refused(lambda: Criteria(time_start=math.nan), CriteriaError, "time_start", "nan")
    assert Criteria(time=(53000, 53001)).time_start == 53000


def test_time_and_time_start_together_are_refused_like_position_and_target():
    _refused(
        lambda: Criteria(time=(53000, 53001), time_start=53000), CriteriaError, "time", "not both"
    )


def test_reversed_iso_times_are_reported_as_typed():
    message = _refused(
        lambda: Criteria(time=("2005-01-01", "2004-01-01")),
        CriteriaError,
        "2005-01-01",
        "2004-01-01",
    )
    assert "MJD" not in message


def test_limit_has_a_maximum_and_criteria_cannot_be_changed():
    _refused(lambda: Criteria(limit=10**30), CriteriaError, "limit", "10,000,000")
    crit = Criteria(limit=5)

    def assign():
        crit.limit = 6

    _refused(assign, CriteriaError, "limit", "cannot be changed")


def test_a_field_is_named_once():
    with pytest.raises(CriteriaError) as info:
        Criteria(ra=83.6, dec=100, radius=1)
    assert str(info.value) == "dec: must be in [-90, 90] degrees, got 100.0"
    assert info.value.field == "dec"


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.floats()), max_size=3),
    st.tuples(st.text(max_size=12), st.text(max_size=12)),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_CRITERIA_NAMES = ["ra", "dec", "radius", "time", "time_start", "energy_min", "limit", "obs_id",
                   "calib_level", "max_zenith", "data_level", "collection", "parameter", "tagret"]  # fmt: skip
_CONFIG_NAMES = ["ra_deg", "dec_deg", "on_radius_deg", "energy_min_tev", "energy_max_tev",
                 "energy_bins_per_decade", "flux_points_edges_tev", "safe_mask", "exclusion",
                 "model", "on_radus_deg"]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_CRITERIA_NAMES), _VALUES, max_size=3))
def test_any_criteria_keywords_succeed_or_raise_a_ctanb_error(kwargs):
    try:
        Criteria(**kwargs)
    except CtanbError as exc:
        assert not INTERNALS.search(str(exc)), str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_CONFIG_NAMES), _VALUES, max_size=3))
def test_any_config_keywords_succeed_or_raise_a_config_error(kwargs):
    try:
        SpectrumConfig(**{**CRAB, **kwargs})
    except ConfigError as exc:
        assert not INTERNALS.search(str(exc)), str(exc)


# --- findings 7, 9, 11, 13, 19: the archive client ------------------------------------------
@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTANB_OFFLINE", "1")
    monkeypatch.delenv("CTANB_TOKEN", raising=False)


@pytest.fixture(scope="module")
def archive(archive_url):
    return ctanb.connect(archive_url, progress=False)


def test_connect_options_are_checked(archive_url):
    _refused(lambda: ctanb.connect(archive_url, tokne="x"), ConfigError, "'tokne'", "token")
    _refused(lambda: ctanb.connect(archive_url, token=12345), ConfigError, "token", "12345")
    _refused(lambda: ctanb.connect(archive_url, workers="four"), ConfigError, "workers", "'four'")
    _refused(lambda: ctanb.connect(archive_url, workers=0), ConfigError, "workers")


def test_one_trusted_origin_as_text_is_one_origin(archive_url):
    archive = ctanb.connect(archive_url, token="t", trusted_origins="http://data.example:8000")
    assert archive.has_token
    assert "http://data.example:8000" in archive._trusted_origins
    _refused(
        lambda: ctanb.connect(archive_url, trusted_origins=["ftp://x"]), ConfigError, "ftp://x"
    )


def test_bad_arguments_to_archive_methods(archive, tmp_path):
    _refused(lambda: archive.resolve(None), ctanb.ResolveError, "None")
    _refused(lambda: archive.adql([1, 2]), CriteriaError, "[1, 2]")
    _refused(lambda: archive.datalink(5), DownloadError, "datalink", "5")
    _refused(lambda: archive.download(None), DownloadError, "None")
    _refused(lambda: archive.download("23523"), DownloadError, "'23523'")
    _refused(lambda: archive.query(None), QueryError, "None")
    _refused(
        lambda: archive.query("SELECT TOP 1 * FROM ivoa.obscore", timeout=-1),
        QueryError,
        "timeout",
        "-1",
    )
    _refused(
        lambda: archive.query("SELECT TOP 1 * FROM ivoa.obscore", maxrec="x"), QueryError, "maxrec"
    )
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    one = archive.search(obs_id="23523", limit=1)
    _refused(lambda: archive.download(one, dest=afile), DownloadError, str(afile), "not a folder")
    assert afile.read_text() == "keep me"


def test_empty_obs_id_list_does_not_return_the_archive(archive):
    _refused(lambda: archive.search(obs_id=[]), CriteriaError, "obs_id", "empty")


def test_iso_during_over_the_whole_range_is_not_called_an_mjd_mistake(archive):
    found = archive.search(during=[("1900-01-01", "2100-01-01")], collection="HESS-DL3-DR1")
    assert len(found) > 0


def test_datalink_of_an_unknown_id_is_not_found(archive):
    message = _refused(lambda: archive.datalink("ivo://nope/xyz"), NotFoundError, "ivo://nope/xyz")
    assert "NotFoundFault" not in message
    one = archive.search(obs_id="23523", limit=1)
    assert archive.datalink(one[0]).by_semantics("#this")


def test_widget_and_app_arguments_are_checked(archive, tmp_path):
    from ctanb.widgets import App, ResultsTable

    table = ResultsTable()
    table.set_results(archive.search(collection="HESS-DL3-DR1"))
    _refused(lambda: table.go_to("two"), CtanbError, "page", "'two'")
    _refused(lambda: table.select(["a"]), CtanbError, "row", "'a'")
    table.select([0, 1])
    assert table.selected_rows == [0, 1]
    # Export makes missing folders, as download(dest=) and step products (out=) do...
    written = table.export(tmp_path / "new" / "dir" / "x.vot")
    assert written.is_file()
    # ...and says so when it cannot write there.
    (tmp_path / "afile").write_text("x")
    _refused(lambda: table.export(tmp_path / "afile" / "x.vot"), CtanbError, "afile")
    app = App(archive)
    _refused(lambda: app.login(123), ConfigError, "token", "123")
    _refused(lambda: app.connect_samp("carrier-pigeon"), ConfigError, "'carrier-pigeon'")
    assert app.samp is None


def test_jobs_provenance_and_steps_refuse_wrong_types(tmp_path, prov_store_url):
    from ctanb.analysis import inputs_from_archive
    from ctanb.jobs import JobManager
    from ctanb.provenance import ProvenanceStore, read_provenance

    with JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs") as jobs:
        _refused(lambda: jobs.submit("query", "notadict"), ctanb.JobError, "params", "'notadict'")
    store = ProvenanceStore(prov_store_url)
    _refused(lambda: store.activities(parameters="x"), ctanb.ProvenanceError, "parameters")
    _refused(lambda: read_provenance(None), ctanb.ProvenanceError, "None")
    _refused(lambda: inputs_from_archive(None), ConfigError, "None")
    step = SpectrumStep(SpectrumConfig(**CRAB))
    _refused(lambda: step.run(None, out=tmp_path / "o"), ctanb.AnalysisError, "None")


def test_a_step_refuses_a_file_as_its_output_folder(tmp_path, data_dir):
    from ctanb.analysis import ExclusionMaskStep

    afile = tmp_path / "afile"
    afile.write_text("keep me")
    events = [data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"]
    step = SpectrumStep(SpectrumConfig(**CRAB))
    for call in (lambda: step.run(events, out=afile), lambda: step.run(events, afile)):
        _refused(call, ctanb.AnalysisError, str(afile), "not a folder")
    mask = ExclusionMaskStep({"geom": {"wcs": {"skydir": SKY}}})
    _refused(lambda: mask.run(afile), ctanb.AnalysisError, str(afile))
    _refused(lambda: mask.run(None), ctanb.AnalysisError, "out", "None")
    assert afile.read_text() == "keep me"
