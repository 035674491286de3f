"""Provenance of every ctanb product: record, store, serialize, query, verify, redo.

Model
-----
The model is W3C PROV, built with the ``prov`` package. The IVOA ProvenanceDM
classes (ActivityDescription, UsageDescription, GenerationDescription,
Parameter, ConfigFile) are **mapped onto plain PROV records with the IVOA
``voprov`` namespace** (``http://www.ivoa.net/documents/ProvenanceDM/ns/voprov/``)
rather than written with the ``voprov`` package: voprov 0.0.4 (2023) is a fork
of an old ``prov`` and would pin it, while the mapping keeps every standard
serializer of ``prov`` 3 working (PROV-JSON, PROV-XML, PROV-N, PROV-O) and any
PROV tool can read the result. The mapping table is in
:mod:`ctanb.provenance.document`; ctanb's own attributes (hashes, ObsCore
keywords, status) use the ``ctanb`` namespace.

Recording
---------
An activity records its ActivityDescription (name, version, description), start
and end time, status, every parameter and the full configuration; the entities
it used (files: location, sha256, size, ObsCore publisher DID, obs_id, data
level; in-memory objects: a content hash, see :mod:`ctanb.provenance._hashing`)
and generated (products: location, sha256, data level, product type); and its
agents (the user from ``JUPYTERHUB_USER`` or the login name; ctanb, gammapy,
astropy, numpy and Python versions; the host). Relations: used, wasGeneratedBy,
wasDerivedFrom, wasInformedBy, wasAssociatedWith.

Two ways, for analysis steps::

    from ctanb.provenance import Activity, recorded

    class CountsMapStep:
        def __init__(self, config: CountsMapConfig):   # a strict pydantic model
            self.config = config

        @recorded(name="counts-map", version="1.0", inputs=["event_files"],
                  outputs={"out": "counts"}, data_level="DL4")
        def run(self, event_files: list[str], out: str) -> Result:
            ...

    with Activity("flux-points", version="0.3", config=cfg) as act:
        act.used(path, obscore=row)                    # an ObsCore row from the archive
        act.used(datasets)                             # in memory: content hash
        act.parameter("n_bins", 12)
        points.write("flux.fits")
        act.generated("flux.fits", data_level="DL5", product_type="flux")

``@recorded`` records the arguments: those named in ``inputs`` are used files
(a mapping ``{"event_files": describe}`` lets ``describe(path)`` return the
ObsCore row), those in ``outputs`` are products, the rest are parameters (or,
without a JSON form, used in-memory entities); ``self.config`` is the
configuration. Inside the call, :func:`current_activity` gives the activity,
so a step can add ``current_activity().used(...)`` for files it opens itself.
``@recorded`` registers the function as the code of its step kind and version
(:mod:`ctanb.provenance.steps`); records name the kind, never code, and ``redo``
runs registered steps only (a method's class is rebuilt as ``Class(config)``).

Products are signed when written (:mod:`ctanb.provenance.signing`) and ``verify``
covers every header and data byte and the record itself
(:mod:`ctanb.provenance.verify`).

Products and store
------------------
When an activity ends, every FITS product it generated gets its provenance
(HDU ``PROVENANCE`` with PROV-JSON of the whole known lineage; primary-header
keys ``PROV_ID``, ``PROV_ACT``, ``PROV_DL``, ``PROV_TYP`` and the ObsCore
``calib_version``/``reco_version``/``reco_method``/``applied_cuts`` of the
inputs as ``CALIBVER``/``RECO_VER``/``RECO_MTH``/``APPCUTS``; when inputs
disagree all values are kept comma-joined and ``PROVMIX`` names the keys).
Using such a product as input brings its lineage along. Activities are also
written to a :class:`ProvenanceStore` (SQLite ``<CTANB_HOME>/provenance.db`` by
default, or ``CTANB_PROV_URL``, e.g. ``postgresql+psycopg://...`` for a hub),
*behind* the step: a writer thread commits them while the notebook goes on, every
read waits for the pending writes, and the process flushes them when it exits
(:mod:`ctanb.provenance._writebehind`).

Command line: ``ctanb prov show|graph|query|verify|redo``.
"""

from __future__ import annotations

from ._hashing import content_hash, fits_data_sha256, sha256_file
from .capture import Activity, current_activity
from .decorate import recorded
from .document import parse, serialize
from .fits import attach_provenance, read_provenance
from .graph import graph_to_svg
from .records import ActivityRecord, EntityRecord, ProvenanceGraph
from .replay import TOLERANCES, RedoReport, compare_fits, redo
from .signing import public_key, trust_key
from .steps import registered_steps
from .store import ProvenanceStore, default_store
from .verify import VerifyReport, verify

__all__ = [
    "TOLERANCES",
    "Activity",
    "ActivityRecord",
    "EntityRecord",
    "ProvenanceGraph",
    "ProvenanceStore",
    "RedoReport",
    "VerifyReport",
    "attach_provenance",
    "compare_fits",
    "content_hash",
    "current_activity",
    "default_store",
    "fits_data_sha256",
    "graph_to_svg",
    "parse",
    "public_key",
    "read_provenance",
    "recorded",
    "redo",
    "registered_steps",
    "serialize",
    "sha256_file",
    "trust_key",
    "verify",
]
