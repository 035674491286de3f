"""The CTA ObsCore data model: one source of truth for every column.

ObsCore 1.1 (IVOA REC 2017-05-09) plus the CTA extension proposed in the CTA
data-model talks (ObsConfig and provenance keywords). The embedded archive's
SQLite schema and TAP_SCHEMA, the DaCHS resource descriptor and the search form
are all generated from :data:`OBSCORE_COLUMNS`; nothing else lists columns.

Conventions
-----------
- Times ``t_min``/``t_max`` are MJD (TT, as in the GADF headers).
- ``em_min``/``em_max`` are wavelengths in metres (ObsCore); ``energy_min``/
  ``energy_max`` are the same band in TeV. ``em_min`` comes from the *highest*
  energy: lambda = hc / E with :data:`HC_TEV_M`.
- ``s_region`` is an ObsCore 1.1 REGION: ``char`` with ``xtype="adql:REGION"``, its
  values STC-S strings ``"POLYGON ICRS ra1 dec1 ra2 dec2 ..."`` (degrees), as DaCHS
  serves its ``spoly`` column, so that both archives return the same thing. The
  embedded archive stores the bare vertex list ``"ra1 dec1 ..."`` (its spatial
  index reads that) and adds the STC-S prefix when a query returns the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CHOICES",
    "COLUMNS_BY_NAME",
    "DATA_LEVELS",
    "EQUALITY_CRITERIA",
    "HC_TEV_M",
    "HEA_PRODUCT_TYPES",
    "OBSCORE_COLUMNS",
    "OBSCORE_HEA_COLUMNS",
    "OBSCORE_HEA_TABLE",
    "OBSCORE_TABLE",
    "REGION_XTYPE",
    "Column",
    "column",
    "criterion_of",
    "energy_tev_to_wavelength_m",
    "wavelength_m_to_energy_tev",
]

#: Planck constant times speed of light, in TeV metre (CODATA 2018).
HC_TEV_M = 1.239841984e-18

#: Fully qualified name of the ObsCore table in both archives.
OBSCORE_TABLE = "ivoa.obscore"

#: ObsCore 1.1 xtype of ``s_region``: an STC-S string such as ``"POLYGON ICRS 1 2 3 4 5 6"``.
REGION_XTYPE = "adql:REGION"

#: Data levels of the CTA data model (``dataproduct_subtype`` starts with one).
DATA_LEVELS = ("DL0", "DL1", "DL2", "DL3", "DL4", "DL5")


@dataclass(frozen=True)
class Column:
    """One column of ``ivoa.obscore``.

    Parameters
    ----------
    name : str
        Column name (lower case, as in ObsCore).
    datatype : str
        VOTable datatype: ``char``, ``short``, ``int``, ``long``, ``float``,
        ``double``, ``boolean``.
    unit : str
        VOUnit string, empty when dimensionless.
    ucd : str
        UCD1+ word(s).
    description : str
        One sentence for people (shown in forms and TAP_SCHEMA).
    utype : str
        ObsCore utype, empty for CTA extension columns.
    arraysize : str or None
        ``"*"`` for variable-length strings and arrays.
    xtype : str or None
        Extended type: DALI (``timestamp``) or ObsCore's ``adql:REGION``.
    group : str
        Where the column belongs in the search form: ``obscore`` (ObsCore
        mandatory), ``obscore-optional``, ``obsconfig``, ``provenance``, ``cta``.
    principal : bool
        Shown by default (TAP_SCHEMA ``principal``).
    indexed : bool
        Indexed in the archive (TAP_SCHEMA ``indexed``).
    mandatory : bool
        Mandatory in ObsCore 1.1 (``std`` = 1 in TAP_SCHEMA for ObsCore columns).
    choices : tuple of str
        Allowed values for an enumerated column (empty when free).
    """

    name: str
    datatype: str
    unit: str
    ucd: str
    description: str
    utype: str = ""
    arraysize: str | None = None
    xtype: str | None = None
    group: str = "obscore"
    principal: bool = False
    indexed: bool = False
    mandatory: bool = False
    choices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_numeric(self) -> bool:
        """True for numbers (scalar), False for strings and arrays."""
        return self.datatype not in ("char", "unicodeChar") and self.arraysize is None

    @property
    def sql_type(self) -> str:
        """The SQLite column type (affinity)."""
        if not self.is_numeric:
            return "TEXT"
        return "INTEGER" if self.datatype in ("short", "int", "long", "boolean") else "REAL"

    @property
    def pg_type(self) -> str:
        """The PostgreSQL type (for DaCHS resource descriptors)."""
        if self.xtype in (REGION_XTYPE, "polygon"):
            return "spoly"
        if self.xtype == "timestamp":
            return "timestamp"
        return {
            "char": "text",
            "short": "smallint",
            "int": "integer",
            "long": "bigint",
            "float": "real",
            "double": "double precision",
            "boolean": "boolean",
        }[self.datatype]


def _c(name, datatype, unit, ucd, description, **kw) -> Column:
    return Column(name, datatype, unit, ucd, description, **kw)


_S = "*"
_OC = "obscore:"

#: Enumerations of the CTA extension (also the choice lists of the search form).
CHOICES: dict[str, tuple[str, ...]] = {
    "dataproduct_type": ("event", "image", "cube", "spectrum", "timeseries", "sed", "measurements"),
    "data_rights": ("public", "secure", "proprietary"),
    "pointing_mode": ("parallel", "convergent", "divergent", "custom"),
    "obs_mode": ("wobble", "on", "off", "scan"),
    "obs_type": ("science", "background", "calibration", "flatfield", "simulation"),
    "site": ("CTAO-North", "CTAO-South", "H.E.S.S.", "MAGIC"),
    "applied_cuts": ("loose", "standard", "hard", "rad_max"),
    "data_quality": ("good", "fair", "bad"),
}

# One line per column reads as a table; keep the formatter away from it.
# fmt: off
OBSCORE_COLUMNS: tuple[Column, ...] = (
    # --- ObsCore 1.1 mandatory -------------------------------------------------------
    _c("dataproduct_type", "char", "", "meta.code.class", "Data product type: event, image, cube, spectrum, timeseries, sed", utype=_OC + "ObsDataset.dataProductType", arraysize=_S, principal=True, indexed=True, mandatory=True, choices=CHOICES["dataproduct_type"]),
    _c("calib_level", "short", "", "meta.code;obs.calib", "Calibration level 0-4 (DL3 event lists are level 2)", utype=_OC + "ObsDataset.calibLevel", principal=True, mandatory=True),
    _c("obs_collection", "char", "", "meta.id", "Name of the data collection (release)", utype=_OC + "DataID.Collection", arraysize=_S, principal=True, indexed=True, mandatory=True),
    _c("obs_id", "char", "", "meta.id", "Observation (run) identifier within the collection", utype=_OC + "DataID.observationID", arraysize=_S, principal=True, indexed=True, mandatory=True),
    _c("obs_publisher_did", "char", "", "meta.ref.ivoid", "Dataset identifier assigned by the publisher (IVOA URI)", utype=_OC + "Curation.PublisherDID", arraysize=_S, principal=True, indexed=True, mandatory=True),
    _c("access_url", "char", "", "meta.ref.url", "URL to download the dataset", utype=_OC + "Access.Reference", arraysize=_S, principal=True, mandatory=True),
    _c("access_format", "char", "", "meta.code.mime", "Content format of the dataset", utype=_OC + "Access.Format", arraysize=_S, mandatory=True),
    _c("access_estsize", "long", "kbyte", "phys.size;meta.file", "Estimated size of the dataset", utype=_OC + "Access.Size", mandatory=True),
    _c("target_name", "char", "", "meta.id;src", "Name of the observed target", utype=_OC + "Target.Name", arraysize=_S, principal=True, indexed=True, mandatory=True),
    _c("s_ra", "double", "deg", "pos.eq.ra", "Right ascension of the pointing (ICRS)", utype=_OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1", principal=True, indexed=True, mandatory=True),
    _c("s_dec", "double", "deg", "pos.eq.dec", "Declination of the pointing (ICRS)", utype=_OC + "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2", principal=True, indexed=True, mandatory=True),
    _c("s_fov", "double", "deg", "phys.angSize;instr.fov", "Diameter of the field of view", utype=_OC + "Char.SpatialAxis.Coverage.Bounds.Extent.diameter", mandatory=True),
    _c("s_region", "char", "", "pos.outline;obs.field", "Sky footprint of the field of view (polygon)", utype=_OC + "Char.SpatialAxis.Coverage.Support.Area", arraysize=_S, xtype=REGION_XTYPE, indexed=True, mandatory=True),
    _c("s_resolution", "double", "arcsec", "pos.angResolution", "Typical angular resolution (68% containment)", utype=_OC + "Char.SpatialAxis.Resolution.Refval.value", mandatory=True),
    _c("s_xel1", "long", "", "meta.number", "Number of elements along the first spatial axis (-1: events)", utype=_OC + "Char.SpatialAxis.numBins1", mandatory=True),
    _c("s_xel2", "long", "", "meta.number", "Number of elements along the second spatial axis (-1: events)", utype=_OC + "Char.SpatialAxis.numBins2", mandatory=True),
    _c("t_min", "double", "d", "time.start;obs.exposure", "Start time (MJD, TT)", utype=_OC + "Char.TimeAxis.Coverage.Bounds.Limits.StartTime", principal=True, indexed=True, mandatory=True),
    _c("t_max", "double", "d", "time.end;obs.exposure", "Stop time (MJD, TT)", utype=_OC + "Char.TimeAxis.Coverage.Bounds.Limits.StopTime", principal=True, indexed=True, mandatory=True),
    _c("t_exptime", "double", "s", "time.duration;obs.exposure", "Live time of the observation", utype=_OC + "Char.TimeAxis.Coverage.Support.Extent", principal=True, mandatory=True),
    _c("t_resolution", "double", "s", "time.resolution", "Time resolution", utype=_OC + "Char.TimeAxis.Resolution.Refval.value", mandatory=True),
    _c("t_xel", "long", "", "meta.number", "Number of elements along the time axis (-1: events)", utype=_OC + "Char.TimeAxis.numBins", mandatory=True),
    _c("em_min", "double", "m", "em.wl;stat.min", "Shortest wavelength (from the highest energy)", utype=_OC + "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", indexed=True, mandatory=True),
    _c("em_max", "double", "m", "em.wl;stat.max", "Longest wavelength (from the lowest energy)", utype=_OC + "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", indexed=True, mandatory=True),
    _c("em_res_power", "double", "", "spect.resolution", "Spectral resolving power E/dE", utype=_OC + "Char.SpectralAxis.Resolution.ResolPower.refVal", mandatory=True),
    _c("em_xel", "long", "", "meta.number", "Number of elements along the spectral axis (-1: events)", utype=_OC + "Char.SpectralAxis.numBins", mandatory=True),
    _c("o_ucd", "char", "", "meta.ucd", "UCD of the observable", utype=_OC + "Char.ObservableAxis.ucd", arraysize=_S, mandatory=True),
    _c("pol_states", "char", "", "meta.code;phys.polarization", "Polarisation states (none for IACT data)", utype=_OC + "Char.PolarizationAxis.stateList", arraysize=_S, mandatory=True),
    _c("pol_xel", "long", "", "meta.number", "Number of polarisation samples", utype=_OC + "Char.PolarizationAxis.numBins", mandatory=True),
    _c("facility_name", "char", "", "meta.id;instr.tel", "Observatory or facility", utype=_OC + "Provenance.ObsConfig.Facility.name", arraysize=_S, principal=True, indexed=True, mandatory=True),
    _c("instrument_name", "char", "", "meta.id;instr", "Instrument (array configuration)", utype=_OC + "Provenance.ObsConfig.Instrument.name", arraysize=_S, principal=True, indexed=True, mandatory=True),
    # --- ObsCore 1.1 optional, used by CTA -------------------------------------------
    _c("dataproduct_subtype", "char", "", "meta.code.class", "CTA data level and kind, e.g. DL3-events, DL4-map", utype=_OC + "ObsDataset.dataProductSubtype", arraysize=_S, group="obscore-optional", principal=True, indexed=True),
    _c("obs_creation_date", "char", "", "time;meta.dataset", "Date the dataset was created", utype=_OC + "DataID.Date", arraysize=_S, xtype="timestamp", group="obscore-optional"),
    _c("obs_release_date", "char", "", "time.release", "Date the data becomes public", utype=_OC + "Curation.releaseDate", arraysize=_S, xtype="timestamp", group="obscore-optional", principal=True, indexed=True),
    _c("data_rights", "char", "", "meta.code", "Access rights: public, secure or proprietary", utype=_OC + "Curation.Rights", arraysize=_S, group="obscore-optional", principal=True, indexed=True, choices=CHOICES["data_rights"]),
    _c("s_resolution_min", "double", "arcsec", "pos.angResolution;stat.min", "Best angular resolution over the energy range", utype=_OC + "Char.SpatialAxis.Resolution.Bounds.Limits.LoLimit", group="obscore-optional"),
    _c("s_resolution_max", "double", "arcsec", "pos.angResolution;stat.max", "Worst angular resolution over the energy range", utype=_OC + "Char.SpatialAxis.Resolution.Bounds.Limits.HiLimit", group="obscore-optional"),
    _c("proposal_id", "char", "", "meta.id;obs.proposal", "Identifier of the observing proposal", utype=_OC + "Provenance.Proposal.identifier", arraysize=_S, group="obscore-optional", principal=True, indexed=True),
    _c("target_class", "char", "", "src.class", "Class of the target (pwn, blazar, snr, field, ...)", utype=_OC + "Target.Class", arraysize=_S, group="obscore-optional", principal=True, indexed=True),
    _c("obs_title", "char", "", "meta.title;obs", "Short human-readable description of the dataset", utype=_OC + "DataID.Title", arraysize=_S, group="obscore-optional"),
    _c("obs_creator_name", "char", "", "meta.id", "Creator of the dataset", utype=_OC + "DataID.Creator", arraysize=_S, group="obscore-optional"),
    _c("bib_reference", "char", "", "meta.bib.bibcode", "Reference to the data release", utype=_OC + "Curation.Reference", arraysize=_S, group="obscore-optional"),
    # --- CTA ObsConfig ----------------------------------------------------------------
    _c("site", "char", "", "meta.id;instr.obsty", "Array site: CTAO-North, CTAO-South, H.E.S.S., MAGIC", arraysize=_S, group="obsconfig", principal=True, indexed=True, choices=CHOICES["site"]),
    _c("sub_array_name", "char", "", "meta.id;instr.setup", "Sub-array, e.g. 4LSTs09MSTs or 14MSTs37SSTs", arraysize=_S, group="obsconfig", principal=True, indexed=True),
    _c("pointing_mode", "char", "", "meta.code;instr.setup", "Pointing of the telescopes: parallel, convergent, divergent or custom", arraysize=_S, group="obsconfig", indexed=True, choices=CHOICES["pointing_mode"]),
    _c("obs_mode", "char", "", "meta.code;obs", "Observation mode: wobble, on, off or scan", arraysize=_S, group="obsconfig", principal=True, indexed=True, choices=CHOICES["obs_mode"]),
    _c("obs_type", "char", "", "meta.code.class;obs", "Observation type: science, background, calibration, flatfield or simulation", arraysize=_S, group="obsconfig", indexed=True, choices=CHOICES["obs_type"]),
    _c("n_tels", "short", "", "meta.number;instr.tel", "Number of telescopes in the observation", group="obsconfig"),
    _c("zen_pnt", "double", "deg", "pos.az.zd;instr.tel", "Mean zenith angle of the pointing", group="obsconfig", indexed=True),
    # --- CTA provenance keywords --------------------------------------------------------
    _c("data_quality", "char", "", "meta.code.qual", "Data quality flag: good, fair or bad", arraysize=_S, group="provenance", indexed=True, choices=CHOICES["data_quality"]),
    _c("calib_version", "char", "", "meta.version;obs.calib", "Version of the calibration pipeline", arraysize=_S, group="provenance", indexed=True),
    _c("reco_version", "char", "", "meta.version;meta.software", "Version of the reconstruction pipeline", arraysize=_S, group="provenance", indexed=True),
    _c("reco_method", "char", "", "meta.code;meta.software", "Event reconstruction method (e.g. hillas, ImPACT, model++)", arraysize=_S, group="provenance", indexed=True),
    _c("applied_cuts", "char", "", "meta.code;meta.software", "Gamma/hadron cut level: loose, standard, hard, rad_max", arraysize=_S, group="provenance", indexed=True, choices=CHOICES["applied_cuts"]),
    _c("spectral_model", "char", "", "meta.code;spect", "Spectral model assumed by the IRFs or product", arraysize=_S, group="provenance"),
    # --- CTA energy and counts ----------------------------------------------------------
    _c("energy_min", "double", "TeV", "em.energy;stat.min", "Lowest energy of the dataset, in TeV (ivoa.obscore_hea.energy_min is the same energy in eV, as the HEA note says)", group="cta", principal=True, indexed=True),
    _c("energy_max", "double", "TeV", "em.energy;stat.max", "Highest energy of the dataset, in TeV (ivoa.obscore_hea.energy_max is the same energy in eV, as the HEA note says)", group="cta", principal=True, indexed=True),
    _c("ev_xel", "long", "", "meta.number;phys.count", "Number of events in the event list", group="cta", principal=True),
)
# fmt: on

COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in OBSCORE_COLUMNS}


def column(name: str) -> Column:
    """The :class:`Column` called *name* (KeyError names the column)."""
    try:
        return COLUMNS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"ivoa.obscore has no column {name!r}") from None


#: The search criteria (:class:`ctanb.client.Criteria`) that select rows by the value of
#: one column, as one value or any of a list: criterion -> column. The one table of
#: these names: the criteria's conditions and the search form's choice lists (column ->
#: criterion, :func:`criterion_of`) are both derived from it.
EQUALITY_CRITERIA: dict[str, str] = {
    "target_name": "target_name",
    "obs_id": "obs_id",
    "collection": "obs_collection",
    "facility": "facility_name",
    "instrument": "instrument_name",
    "site": "site",
    "sub_array": "sub_array_name",
    "dataproduct_type": "dataproduct_type",
    "dataproduct_subtype": "dataproduct_subtype",
    "pointing_mode": "pointing_mode",
    "obs_mode": "obs_mode",
    "obs_type": "obs_type",
    "proposal_id": "proposal_id",
    "data_rights": "data_rights",
    "target_class": "target_class",
    "calib_version": "calib_version",
    "reco_version": "reco_version",
    "reco_method": "reco_method",
    "applied_cuts": "applied_cuts",
    "data_quality": "data_quality",
}


def criterion_of(column_name: str) -> str | None:
    """The criterion of :data:`EQUALITY_CRITERIA` that selects by *column_name*.

    Parameters
    ----------
    column_name : str
        An ObsCore column, e.g. ``"obs_collection"``.

    Returns
    -------
    str or None
        The :class:`ctanb.client.Criteria` field (``"collection"``), or None when no
        criterion selects by that column.
    """
    return next((crit for crit, col in EQUALITY_CRITERIA.items() if col == column_name), None)


def energy_tev_to_wavelength_m(energy_tev: float) -> float:
    """Wavelength in metres of a photon of *energy_tev* TeV (lambda = hc / E)."""
    return HC_TEV_M / energy_tev


def wavelength_m_to_energy_tev(wavelength_m: float) -> float:
    """Energy in TeV of a photon of wavelength *wavelength_m* metres."""
    return HC_TEV_M / wavelength_m


# --- ivoa.obscore_hea: the IVOA High-Energy ObsCore extension ------------------------------
#: Fully qualified name of the High-Energy ObsCore extension table in both archives.
OBSCORE_HEA_TABLE = "ivoa.obscore_hea"

#: dataproduct_type terms of the High-Energy ObsCore note (section 3.1 and 5.1).
HEA_PRODUCT_TYPES = ("hea-event-list", "hea-event-bundle", "response-function")

# The columns of the note's summary table (IVOA Note "ObsCore extension for High
# Energy Astrophysics data", ivoa/HighEnergyObsCoreExt, table tab:obscore_hea), with
# its units and UCDs; obs_publisher_did is the join key the note requires and
# dataproduct_type an "additional column" (section 4) with the note's product types,
# since ivoa.obscore keeps its ObsCore 1.1 terms. Unlike ivoa.obscore's CTA extension
# (TeV), energy_min/energy_max here are in eV, as the note says: join the two tables
# with USING (obs_publisher_did) or ON, not NATURAL JOIN (which would also compare
# the energies). t_intervals has no UCD in the note ("TBD"): ctanb uses
# time.interval;obs.exposure and the MOC 2.0 ASCII serialization of a time MOC.
# fmt: off
OBSCORE_HEA_COLUMNS: tuple[Column, ...] = (
    _c("obs_publisher_did", "char", "", "meta.ref.ivoid", "Dataset identifier, shared with ivoa.obscore (join key)", arraysize=_S, group="hea", principal=True, indexed=True),
    _c("dataproduct_type", "char", "", "meta.code.class", "High-energy product type: hea-event-list, hea-event-bundle (events with their IRFs) or response-function", arraysize=_S, group="hea", principal=True, indexed=True, choices=HEA_PRODUCT_TYPES),
    _c("ev_xel", "long", "", "meta.number;instr.detection;phys.particle", "Number of events in the event list", group="hea", principal=True),
    _c("s_ref_energy", "double", "eV", "meta.ref;em.energy;pos", "Energy at which s_fov, s_region and s_resolution are given", group="hea"),
    _c("em_ref_energy", "double", "eV", "meta.ref;em.energy;em", "Energy at which em_res_power is given", group="hea"),
    _c("s_ref_oaa", "double", "deg", "pos.posAng;instr.offset;pos", "Off-axis angle at which s_fov, s_region and s_resolution are given", group="hea"),
    _c("em_ref_oaa", "double", "deg", "pos.posAng;instr.offset;em", "Off-axis angle at which em_res_power is given", group="hea"),
    _c("t_intervals", "char", "", "time.interval;obs.exposure", "Good-time intervals of the observation as a time MOC (MOC 2.0 ASCII, order 61 = 1 microsecond, TCB)", arraysize=_S, group="hea", principal=True, indexed=True),
    _c("energy_min", "double", "eV", "em.energy;stat.min", "Lowest energy of the dataset (the energy of em_max), in eV as the HEA note says (ivoa.obscore.energy_min: the same in TeV)", group="hea", principal=True, indexed=True),
    _c("energy_max", "double", "eV", "em.energy;stat.max", "Highest energy of the dataset (the energy of em_min), in eV as the HEA note says (ivoa.obscore.energy_max: the same in TeV)", group="hea", principal=True, indexed=True),
    _c("obs_mode", "char", "", "meta.code;obs.param", "Observation mode (as in ivoa.obscore: wobble, on, off, scan)", arraysize=_S, group="hea", indexed=True),
    _c("tracking_mode", "char", "", "meta.code;obs.param", "Tracking of the telescopes: sidereal, fixed-az-el-transit, solar-system-object-tracking, none", arraysize=_S, group="hea", indexed=True),
    _c("scan_mode", "char", "", "meta.code;obs.param", "Spatial scan mode: on-source, on-off, raster-map, on-the-fly-cross-map (IACT wobble), ...", arraysize=_S, group="hea", indexed=True),
    _c("pointing_mode", "char", "", "meta.code;instr.setup", "Pointing of the telescopes: parallel, convergent or divergent", arraysize=_S, group="hea", indexed=True),
    _c("analysis_mode", "char", "", "meta.code;obs.param", "Data reduction/analysis mode (the gamma/hadron cut configuration)", arraysize=_S, group="hea", indexed=True),
    _c("event_type", "char", "", "meta.code.qual;instr.detection;phys.particle", "Event type (quality partition of the events), when the data have one", arraysize=_S, group="hea"),
    _c("messenger", "char", "", "meta.id;phys.particle", "Messenger particle: photon", arraysize=_S, group="hea", principal=True, indexed=True),
    _c("messenger_pdgid", "char", "", "meta.ref.pdgid;phys.particle", "PDG identifier of the messenger (+22: photon)", arraysize=_S, group="hea"),
)
# fmt: on
