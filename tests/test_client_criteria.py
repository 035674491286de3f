"""Search criteria and the ADQL they become: validation naming the field, safe quoting."""

from __future__ import annotations

import pytest

from ctanb import Criteria, CriteriaError
from ctanb.client.criteria import adql_string, build_adql
from ctanb.datamodel import HC_TEV_M


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"ra": 10.0, "dec": 100.0}, "dec"),
        ({"ra": 400.0, "dec": 10.0}, "ra"),
        ({"ra": 10.0, "dec": 10.0, "radius": -1.0}, "radius"),
        ({"time": ("2005-01-01", "2004-01-01")}, "time_end"),
        ({"time_start": "not a date"}, "time_start"),
        ({"energy_min": -3}, "energy_min"),
        ({"energy_min": 10, "energy_max": 1}, "energy_max"),
        ({"site": "Moon"}, "site"),
        ({"data_rights": "secret"}, "data_rights"),
        ({"exclude_pointing_mode": "sideways"}, "exclude_pointing_mode"),
        ({"data_level": "DL9"}, "data_level"),
        ({"sub_array_includes": "LST%"}, "sub_array_includes"),
        ({"ra": 10.0}, "dec"),
        ({"radius": 2.0}, "radius"),
        ({"raduis": 2.0}, "raduis"),
        ({"limit": 0}, "limit"),
    ],
)
def test_invalid_criteria_name_the_field(criteria, field):
    with pytest.raises(CriteriaError) as info:
        Criteria(**criteria)
    assert info.value.field == field
    assert field.split("_")[0] in str(info.value).lower()


def test_unknown_criterion_suggests_the_close_name():
    with pytest.raises(CriteriaError, match="did you mean radius"):
        Criteria(raduis=2.0)


def test_adql_string_doubles_quotes_and_refuses_control_characters():
    assert adql_string("O'Brien") == "'O''Brien'"
    with pytest.raises(CriteriaError):
        adql_string("a\x00b")


@pytest.mark.parametrize(
    "name",
    ["'; DROP TABLE ivoa.obscore; --", "Kepler's SNR", "x' OR '1'='1", "a''b'"],
)
def test_hostile_names_stay_one_literal(name):
    adql = build_adql(Criteria(target_name=name))
    literal = adql_string(name)
    where = adql.split("WHERE", 1)[1]
    # The name appears only as one literal: removing it leaves the bare predicate.
    assert where.replace(literal, "?").split() == ["target_name", "=", "?", "ORDER", "BY", "t_min"]


def test_energy_above_means_em_min_below_hc_over_e():
    adql = build_adql(Criteria(energy_min=50.0))
    assert f"em_min <= {HC_TEV_M / 50.0!r}" in adql


def test_time_iso_is_utc_converted_to_mjd_tt_and_a_date_means_the_whole_day():
    c = Criteria(time="2004-12-04")
    # 2004-12-04T00:00 UTC = MJD 53343 UTC; TT is 64.184 s later.
    assert c.time_start == pytest.approx(53343 + 64.184 / 86400, abs=1e-8)
    assert c.time_end == pytest.approx(c.time_start + 1.0)
    c = Criteria(time=(53343.0, 53344.5))
    assert (c.time_start, c.time_end) == (53343.0, 53344.5)


def test_every_requested_column_is_a_data_model_column():
    c = Criteria(
        ra=83.6, dec=22.0, radius=1.0, time=(53000, 53100), energy_min=1, energy_max=10,
        data_level="DL3", calib_level=2, sub_array_includes=["LST", "MST"],
        exclude_pointing_mode="divergent", max_zenith=40, collection="CTAO-SIM",
        facility="CTAO", instrument="x", site="CTAO-North", sub_array="4LSTs", obs_mode="wobble",
        obs_type="science", proposal_id="P1", data_rights="public", target_class="blazar",
        calib_version="c", reco_version="r", reco_method="hillas", applied_cuts="loose",
        data_quality="good", obs_id=[1, 2], dataproduct_type="event", limit=5,
    )  # fmt: skip
    adql = build_adql(c)
    assert adql.startswith("SELECT TOP 5 * FROM ivoa.obscore")
    assert "INTERSECTS(CIRCLE('ICRS', 83.6, 22.0, 1.0), s_region) = 1" in adql
    assert "sub_array_name LIKE '%LST%'" in adql and "sub_array_name LIKE '%MST%'" in adql
    assert "(pointing_mode IS NULL OR pointing_mode NOT IN ('divergent'))" in adql
    assert "obs_id IN ('1', '2')" in adql
    assert "dataproduct_subtype LIKE 'DL3%'" in adql


def test_pointing_search_and_position_inside_footprint():
    assert "CONTAINS(POINT('ICRS', 1.0, 2.0), s_region) = 1" in build_adql(Criteria(ra=1, dec=2))
    adql = build_adql(Criteria(ra=1, dec=2, radius=3, spatial="pointing"))
    assert "CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 1.0, 2.0, 3.0)) = 1" in adql


def test_target_needs_a_resolved_position():
    with pytest.raises(CriteriaError, match="not resolved"):
        build_adql(Criteria(target="Crab"))
    assert "POINT('ICRS', 83.6, 22.0)" in build_adql(Criteria(target="Crab"), position=(83.6, 22.0))


def test_criteria_is_frozen_and_reports_what_was_given():
    c = Criteria(collection="CTA-1DC", radius=None)
    assert c.given() == {"collection": "CTA-1DC"}
    with pytest.raises(CriteriaError, match="cannot be changed once made"):
        c.collection = "x"  # type: ignore[misc]


def test_keywords_added_to_a_criteria_object_are_validated_too():
    from ctanb.client.archive import Archive

    archive = Archive("http://127.0.0.1:9/tap", progress=False)
    base = Criteria(collection="CTA-1DC", ra=10.0, dec=-5.0)
    merged = archive._criteria(base, {"radius": 2.0})
    assert (merged.collection, merged.radius) == ("CTA-1DC", 2.0)
    with pytest.raises(CriteriaError) as info:
        archive._criteria(base, {"radius": -2.0})
    assert info.value.field == "radius"
    assert "CONTAINS(POINT('ICRS', 10.0, -5.0), s_region) = 1" in archive.adql(base)


# --- astropy values, as astronomers pass them (issue 15, item 8) ----------------------------
def _given(**criteria):
    return Criteria(**criteria).given()


def test_angles_as_quantities_angles_and_texts():
    import astropy.units as u
    from astropy.coordinates import Angle

    plain = _given(ra=83.63, dec=22.0145, radius=0.5)
    assert _given(
        ra=83.63 * u.deg, dec=Angle("22d00m52.2s"), radius=30 * u.arcmin
    ) == pytest.approx(plain)
    assert _given(ra="83.63 deg", dec="22.0145", radius="0.5 deg") == pytest.approx(plain)
    assert _given(ra="5h34m31.2s", dec="22d00m52.2s", radius="30 arcmin") == pytest.approx(plain)
    assert _given(ra="05:34:31.2", dec="+22:00:52.2", radius=0.5) == pytest.approx(plain)
    assert _given(ra=Angle(83.63, u.deg).to(u.rad), dec=22.0145, radius=0.5)["ra"] == pytest.approx(
        83.63
    )
    assert _given(max_zenith=Angle(40, u.deg))["max_zenith"] == 40.0


def test_positions_as_skycoord_or_name():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    crab = SkyCoord(83.6331, 22.0145, unit="deg")
    assert _given(position=crab, radius=1 * u.deg) == pytest.approx(
        {"ra": 83.6331, "dec": 22.0145, "radius": 1.0}
    )
    galactic = _given(position=crab.galactic, radius="1 deg")
    assert galactic == pytest.approx({"ra": 83.6331, "dec": 22.0145, "radius": 1.0})
    assert _given(position="Crab", radius=2) == {"target": "Crab", "radius": 2.0}
    assert _given(target=crab)["ra"] == pytest.approx(83.6331)


def test_energies_as_quantities_and_times_as_astropy_times():
    import astropy.units as u
    from astropy.time import Time

    given = _given(energy_min=500 * u.GeV, energy_max="50 TeV")
    assert given == pytest.approx({"energy_min": 0.5, "energy_max": 50.0})
    assert _given(energy_min=5e11 * u.eV)["energy_min"] == pytest.approx(0.5)
    start, end = Time("2004-12-04T00:00:00", scale="utc"), Time("2004-12-05", scale="utc")
    expected = {"time_start": start.tt.mjd, "time_end": end.tt.mjd}
    assert _given(time=(start, end)) == pytest.approx(expected)
    assert _given(time=Time(["2004-12-04T00:00:00", "2004-12-05"], scale="utc")) == pytest.approx(
        expected
    )
    assert _given(time_start="2004-12-04T00:00:00", time_end=end) == pytest.approx(expected)
    assert _given(time_start=start.datetime)["time_start"] == pytest.approx(start.tt.mjd)


@pytest.mark.parametrize(
    ("criteria", "field", "words"),
    [
        ({"ra": 1, "dec": 1, "radius": "3 s"}, "radius", "not an angle"),
        ({"ra": "somewhere", "dec": 1}, "ra", "not an angle"),
        ({"energy_min": "3 m"}, "energy_min", "not an energy"),
        ({"energy_max": "lots"}, "energy_max", "not an energy"),
        ({"position": 5}, "position", "neither a target name nor an astropy SkyCoord"),
        ({"position": "Crab", "ra": 1.0, "dec": 2.0}, "target", "not both"),
    ],
)
def test_wrong_astropy_values_name_the_field(criteria, field, words):
    with pytest.raises(CriteriaError) as info:
        Criteria(**criteria)
    assert info.value.field == field and words in str(info.value)


def test_quantities_give_the_same_adql_as_plain_numbers():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    plain = build_adql(Criteria(ra=83.6331, dec=22.0145, radius=1.5, energy_min=0.5))
    crab = SkyCoord(83.6331, 22.0145, unit="deg")
    native = build_adql(Criteria(position=crab, radius=90 * u.arcmin, energy_min=500 * u.GeV))
    assert native == plain
