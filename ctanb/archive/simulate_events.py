"""Event sampling and GADF writing of the simulated CTAO collection.

Used by :func:`ctanb.archive.simulate.simulate`; see that module for the run
table, the header keywords and the simplifications.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .simulate import (
    COLLECTION,
    E_MIN_TEV,
    FOV_RADIUS_DEG,
    MJDREFF,
    MJDREFI,
    N_TELS,
    TARGETS,
    SimulatedRun,
    copy_irfs,
)

__all__ = ["write_store"]

# --- event sampling ---------------------------------------------------------------------

_TEMPLATE_LIVETIME_S = 1800.0
_BKG_NORM = 0.03  # a modest background keeps files small and sampling fast


def _template_datasets(
    irf_paths: dict[str, Path], needed: set[tuple[str, str]]
) -> dict[tuple[str, str], object]:
    """One MapDataset per (site, pointing mode), pointed at (0, 0), 1800 s livetime."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from gammapy.data import FixedPointingInfo, Observation, observatory_locations
    from gammapy.datasets import MapDataset
    from gammapy.irf import load_irf_dict_from_file
    from gammapy.makers import MapDatasetMaker
    from gammapy.maps import MapAxis, WcsGeom

    center = SkyCoord(0.0, 0.0, unit="deg")
    energy = MapAxis.from_energy_bounds(0.03, 200, 6, per_decade=True, unit="TeV", name="energy")
    energy_true = MapAxis.from_energy_bounds(
        0.02, 300, 6, per_decade=True, unit="TeV", name="energy_true"
    )
    migra = MapAxis.from_bounds(0.5, 2.0, nbin=20, node_type="edges", name="migra")
    maker = MapDatasetMaker(selection=["exposure", "background", "psf", "edisp"])
    datasets = {}
    for site, path in irf_paths.items():
        irfs = load_irf_dict_from_file(path)
        location = observatory_locations["cta_north" if site == "CTAO-North" else "cta_south"]
        obs = Observation.create(
            pointing=FixedPointingInfo(fixed_icrs=center),
            livetime=_TEMPLATE_LIVETIME_S * u.s,
            irfs=irfs,
            location=location,
            reference_time=Time(MJDREFI + MJDREFF, format="mjd", scale="tt"),
            obs_id=0,
        )
        for mode, radius in FOV_RADIUS_DEG.items():
            if (site, mode) not in needed:
                continue
            geom = WcsGeom.create(
                skydir=center, binsz=0.1, width=2 * radius + 0.4, frame="icrs", axes=[energy]
            )
            name = f"{site}-{mode}"
            empty = MapDataset.create(
                geom, energy_axis_true=energy_true, migra_axis=migra, name=name
            )
            datasets[site, mode] = (maker.run(empty, obs), obs)
    return datasets


def _sample_run(run: SimulatedRun, dataset, obs, seed: int):
    """Sampled events (numpy structured columns) of one run, already at its pointing."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from gammapy.datasets import MapDatasetEventSampler
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        GaussianSpatialModel,
        Models,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    ra, dec, _, index, amplitude, sigma = TARGETS[run.target]
    pointing = SkyCoord(*run.pointing, unit="deg")
    target = SkyCoord(ra, dec, unit="deg")
    # Place the source in the template frame at the same offset and position angle.
    template_center = SkyCoord(0.0, 0.0, unit="deg")
    src = template_center.directional_offset_by(
        pointing.position_angle(target), pointing.separation(target)
    )
    scale = run.livetime_s / _TEMPLATE_LIVETIME_S
    spatial = (
        GaussianSpatialModel(lon_0=src.ra, lat_0=src.dec, sigma=sigma * u.deg, frame="icrs")
        if sigma > 0
        else PointSpatialModel(lon_0=src.ra, lat_0=src.dec, frame="icrs")
    )
    spectral = PowerLawSpectralModel(
        index=index, amplitude=amplitude * scale * u.Unit("cm-2 s-1 TeV-1")
    )
    bkg = FoVBackgroundModel(dataset_name=dataset.name)
    bkg.spectral_model.norm.value = _BKG_NORM * scale
    dataset.models = Models([SkyModel(spectral, spatial, name=run.target.replace(" ", "_")), bkg])
    events = MapDatasetEventSampler(random_state=seed * 1_000_003 + run.obs_id).run(dataset, obs)
    table = events.table
    coords = SkyCoord(table["RA"].quantity, table["DEC"].quantity)
    sep, pa = template_center.separation(coords), template_center.position_angle(coords)
    moved = pointing.directional_offset_by(pa, sep)
    energy = table["ENERGY"].quantity.to_value("TeV")
    keep = (
        (sep.deg <= run.fov_radius)
        & (energy >= E_MIN_TEV[run.sub_array])
        & (energy <= run.emax_tev)
    )
    rng = np.random.default_rng(seed * 7919 + run.obs_id)
    n = int(keep.sum())
    ontime = run.livetime_s / 0.98  # 2% dead time
    times = np.sort(rng.uniform(0.0, ontime, n))
    return {
        "EVENT_ID": np.arange(1, n + 1, dtype=np.int64),
        "TIME": times,
        "RA": moved.ra.deg[keep].astype(np.float32),
        "DEC": moved.dec.deg[keep].astype(np.float32),
        "ENERGY": energy[keep].astype(np.float32),
        "DETX": np.asarray(table["DETX"], dtype=np.float32)[keep],
        "DETY": np.asarray(table["DETY"], dtype=np.float32)[keep],
        "MC_ID": np.asarray(table["MC_ID"], dtype=np.int32)[keep],
    }, ontime


def _events_header(run: SimulatedRun, ontime: float, n_events: int):
    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.io import fits
    from astropy.time import Time
    from gammapy.data import observatory_locations

    start = Time(run.start, scale="tt")
    tstart = (start - Time(MJDREFI + MJDREFF, format="mjd", scale="tt")).sec
    location: EarthLocation = observatory_locations[
        "cta_north" if run.site == "CTAO-North" else "cta_south"
    ]
    mid = start + ontime / 2 * u.s
    altaz = SkyCoord(*run.pointing, unit="deg").transform_to(AltAz(obstime=mid, location=location))
    ra_obj, dec_obj = TARGETS[run.target][:2]
    end = start + ontime * u.s
    h = fits.Header()
    cards = [
        ("HDUCLASS", "GADF", "GADF conformant"),
        ("HDUDOC", "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats", ""),
        ("HDUVERS", "0.3", ""),
        ("HDUCLAS1", "EVENTS", ""),
        ("OBS_ID", run.obs_id, "observation identifier"),
        ("TELESCOP", "CTAO", "observatory"),
        ("INSTRUME", f"{run.site} array", "instrument"),
        ("OBSCOLL", COLLECTION, "ObsCore obs_collection"),
        ("SITE", run.site, "array site"),
        ("SUBARRAY", run.sub_array, "sub-array name"),
        ("N_TELS", N_TELS[run.sub_array], "number of telescopes"),
        ("OBS_MODE", run.obs_mode.upper(), "observation mode (wobble, on, scan)"),
        ("PNTMODE", run.pointing_mode, "pointing mode of the telescopes"),
        ("OBS_TYPE", "science", "observation type"),
        ("PROPOSAL", run.proposal_id, "proposal identifier"),
        ("OBJECT", run.target, "observed target"),
        ("TGTCLASS", run.target_class, "target class"),
        ("RA_OBJ", ra_obj, "[deg] target RA"),
        ("DEC_OBJ", dec_obj, "[deg] target Dec"),
        ("RA_PNT", run.pointing[0], "[deg] pointing RA"),
        ("DEC_PNT", run.pointing[1], "[deg] pointing Dec"),
        ("ALT_PNT", round(float(altaz.alt.deg), 4), "[deg] mean altitude"),
        ("AZ_PNT", round(float(altaz.az.deg), 4), "[deg] mean azimuth"),
        ("RADESYS", "ICRS", ""),
        ("QUALITY", "good", "data quality"),
        ("CALIBVER", run.calib_version, "calibration pipeline version"),
        ("RECOVER", run.reco_version, "reconstruction pipeline version"),
        ("RECOMETH", run.reco_method, "reconstruction method"),
        ("EV_CLASS", run.cuts, "gamma/hadron cut level"),
        ("CREATOR", "ctanb.archive.simulate (gammapy MapDatasetEventSampler)", ""),
        ("DATE", (end + 1 * u.day).isot[:19], "file creation date"),
        ("MJDREFI", MJDREFI, "[d] integer part of reference MJD"),
        ("MJDREFF", MJDREFF, "[d] fractional part of reference MJD"),
        ("TIMEUNIT", "s", ""),
        ("TIMESYS", "TT", ""),
        ("TIMEREF", "LOCAL", ""),
        ("TSTART", round(tstart, 3), "[s] start time"),
        ("TSTOP", round(tstart + ontime, 3), "[s] stop time"),
        ("ONTIME", round(ontime, 3), "[s] total good time"),
        ("LIVETIME", run.livetime_s, "[s] live time"),
        ("DEADC", 0.98, "dead time correction"),
        ("DATE-OBS", start.isot[:10], ""),
        ("TIME-OBS", start.isot[11:19], ""),
        ("DATE-END", end.isot[:10], ""),
        ("TIME-END", end.isot[11:19], ""),
        ("GEOLON", round(float(location.lon.deg), 6), "[deg]"),
        ("GEOLAT", round(float(location.lat.deg), 6), "[deg]"),
        ("ALTITUDE", round(float(location.height.to_value("m")), 1), "[m]"),
        ("EUNIT", "TeV", ""),
        ("EV_COUNT", n_events, "number of events"),
        # GADF data sub-space keywords: the events were selected in this circle/band.
        ("NDSKEYS", 3, ""),
        ("DSTYP1", "TIME", ""),
        ("DSUNI1", "s", ""),
        ("DSVAL1", "TABLE", ""),
        ("DSREF1", ":GTI", ""),
        ("DSTYP2", "ENERGY", ""),
        ("DSUNI2", "TeV", ""),
        ("DSVAL2", f"{E_MIN_TEV[run.sub_array]}:{run.emax_tev}", ""),
        ("DSTYP3", "POS(RA,DEC)", ""),
        ("DSUNI3", "deg", ""),
        ("DSVAL3", f"CIRCLE({run.pointing[0]},{run.pointing[1]},{run.fov_radius})", ""),
    ]
    for key, value, comment in cards:
        h[key] = (value, comment)
    return h, tstart


def write_store(out: Path, runs, *, seed: int, caldb: Path) -> dict[str, int]:
    """Sample every run and write events, indexes and IRF copies; returns name -> size."""
    from astropy.io import fits
    from astropy.table import Table

    irf_paths = copy_irfs(out, caldb)
    templates = _template_datasets(irf_paths, {(r.site, r.pointing_mode) for r in runs})
    (out / "events").mkdir(exist_ok=True)
    obs_rows, hdu_rows, files = [], [], {}
    for run in runs:
        dataset, obs = templates[run.site, run.pointing_mode]
        columns, ontime = _sample_run(run, dataset, obs, seed)
        header, tstart = _events_header(run, ontime, len(columns["TIME"]))
        columns["TIME"] = columns["TIME"] + tstart  # seconds since MJDREF, as GADF wants
        units = {"TIME": "s", "RA": "deg", "DEC": "deg", "ENERGY": "TeV", "DETX": "deg",
                 "DETY": "deg"}  # fmt: skip
        cols = [fits.Column(name=k, array=v, format={np.dtype("int64"): "K",
                np.dtype("float64"): "D", np.dtype("float32"): "E",
                np.dtype("int32"): "J"}[v.dtype], unit=units.get(k))
                for k, v in columns.items()]  # fmt: skip
        events = fits.BinTableHDU.from_columns(cols, header=header, name="EVENTS")
        gti = fits.BinTableHDU.from_columns(
            [fits.Column("START", "D", "s", array=[tstart]),
             fits.Column("STOP", "D", "s", array=[tstart + ontime])],
            name="GTI",
        )  # fmt: skip
        for key in ("HDUCLASS", "MJDREFI", "MJDREFF", "TIMEUNIT", "TIMESYS", "TIMEREF"):
            gti.header[key] = header[key]
        gti.header["HDUCLAS1"] = "GTI"
        name = f"events/ctao_sim_{run.obs_id}.fits"
        fits.HDUList([fits.PrimaryHDU(), events, gti]).writeto(out / name, overwrite=True)
        files[name] = (out / name).stat().st_size
        obs_rows.append({k: header[k] for k in (
            "OBS_ID", "RA_PNT", "DEC_PNT", "ALT_PNT", "AZ_PNT", "OBJECT", "TSTART", "TSTOP",
            "ONTIME", "LIVETIME", "DEADC", "N_TELS", "SUBARRAY", "PROPOSAL", "EV_COUNT")}
            | {"ZEN_PNT": round(90 - header["ALT_PNT"], 4)})  # fmt: skip
        irf = irf_paths[run.site].name
        for hdu_type, hdu_class, file_dir, file_name, hdu_name in [
            ("events", "events", "events", Path(name).name, "EVENTS"),
            ("gti", "gti", "events", Path(name).name, "GTI"),
            ("aeff", "aeff_2d", "irfs", irf, "EFFECTIVE AREA"),
            ("edisp", "edisp_2d", "irfs", irf, "ENERGY DISPERSION"),
            ("psf", "psf_table", "irfs", irf, "POINT SPREAD FUNCTION"),
            ("bkg", "bkg_3d", "irfs", irf, "BACKGROUND"),
        ]:
            hdu_rows.append({"OBS_ID": run.obs_id, "HDU_TYPE": hdu_type, "HDU_CLASS": hdu_class,
                             "FILE_DIR": file_dir, "FILE_NAME": file_name, "HDU_NAME": hdu_name})  # fmt: skip
    meta = {"HDUCLASS": "GADF", "HDUDOC": header["HDUDOC"], "HDUVERS": "0.3",
            "HDUCLAS1": "INDEX", "MJDREFI": MJDREFI, "MJDREFF": MJDREFF, "TIMEUNIT": "s",
            "TIMESYS": "TT", "TIMEREF": "LOCAL"}  # fmt: skip
    obs_index = Table(rows=obs_rows, meta={**meta, "HDUCLAS2": "OBS", "EXTNAME": "OBS_INDEX"})
    hdu_index = Table(rows=hdu_rows, meta={**meta, "HDUCLAS2": "HDU", "EXTNAME": "HDU_INDEX"})
    # Uncompressed: gzip would stamp the write time and break byte-for-byte determinism.
    for table, fname in ((obs_index, "obs-index.fits"), (hdu_index, "hdu-index.fits")):
        table.write(out / fname, overwrite=True)
        files[fname] = (out / fname).stat().st_size
    for path in irf_paths.values():
        files[f"irfs/{path.name}"] = path.stat().st_size
    return files
