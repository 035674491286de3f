"""Products go back to the archive: the checks before accepting one, then one transaction.

A publication is accepted only when all of these hold, checked in this order (the
refusal names the first that fails, with :attr:`PublishRefused.condition`):

``provenance``
    The file is a FITS product carrying a readable provenance record naming itself.
``content``
    Its content (every HDU header and data except the record) has the hash its record
    holds (:mod:`ctanb.provenance.verify`), and the record is signed, by a signature
    that matches it. An unsigned record is refused (anyone can write one around any
    file). A signature by a key the archive does not know is accepted: the archive
    cannot know every analyst's key, and what it vouches for is checked below (the
    steps are ctanb's, the inputs are its own datasets, byte for byte); the signer's
    name and key fingerprint are kept in the curation record (``signer``).
``steps``
    Every activity of the lineage is one of ctanb's registered analysis steps (kind and
    version, :mod:`ctanb.provenance.steps`, the rule ``redo`` applies): a record around
    a file made by other code is refused, naming each such activity.
``token``
    The request carries a token of this archive (publishing is never anonymous).
    The curation's ``publisher`` is the token's identity (a different one is refused).
``inputs``
    Every input file of the lineage that no recorded activity generated is a DL3 dataset
    of this archive (its publisher DID is one of the archive's and its sha256 that of the
    dataset's file), a calibration file of one, reference data shipped with ctanb or in
    the shared catalogs, or a small models or configuration file (YAML, plain data) sent
    with the product and kept with it (:mod:`.publish_inputs`); a refusal names every
    other input.
``rights``
    The token holds the rights to every input (same rule as downloading it).
``analysis``
    The curation's ``analysis`` name is new, or belongs to the token's identity: an
    analysis name belongs to the first publisher under it (``#coderived`` links only
    products of one publisher).

An accepted product is written in one SQLite transaction: its ObsCore row, its file
row, its progenitors, its curation and its provenance tables (:mod:`.provtap`). The
file is written to a temporary name and renamed just before the commit; any failure
rolls back and removes the file, so a failed publication leaves nothing behind. The
DID is computed from the product's record id and content hash: publishing the same
product again answers the same DID and changes nothing.

Rights are inherited: a product made from proprietary inputs is proprietary to their
group until the latest of their release dates (inputs of several groups: readable by
no token until then, a conservative choice).

Vocabulary: ``dataproduct_type`` is ObsCore's (image, cube, spectrum, sed,
timeseries, measurements); ``dataproduct_subtype`` is ``<data level>-<kind>``
(``DL4-counts``, ``DL5-flux_points``). The PyPI package ``ctao-datamodel`` (1.4.0,
pydantic models of the CTAO data model) was evaluated for the product and curation
metadata and is not used: it requires Python >= 3.12 (ctanb runs on 3.11) and two
more dependencies (astropydantic, particle); its DL4/DL5 product types are still only
"proposed" (``ProposedDataType``: CountsMap, Spectrum, ...), and its ``Curation``
(release, reference, license, copyright) does not carry the analysis context the
archive needs. The curation fields here keep its names where they overlap
(``reference``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._errors import CtanbError, ProvenanceError
from .._validation import describe_errors
from ..datamodel import OBSCORE_TABLE
from .db import ACCESS_URL_BASE, PUBLISHER_AUTHORITY, FileRecord, q, upsert_dataset
from .obscore_hea import product_hea_row, upsert_hea
from .publish_inputs import (
    Inputs,
    _check_calibration,
    _dl3_leaves,
    _file_sha256,
    check_steps,
    classify_inputs,
    public_graph,
    remove_user_inputs,
    user_input_files,
    write_user_inputs,
)
from .publish_row import PRODUCT_COLLECTION, analysis_context, analysis_owner, obscore_values

__all__ = [
    "CURATION_TABLE",
    "PRODUCT_ACTIVITIES_TABLE",
    "PRODUCT_COLLECTION",
    "PRODUCT_INPUTS_TABLE",
    "Curation",
    "PublishRefused",
    "PublishResult",
    "create_publish_schema",
    "product_did",
    "publish_file",
]

CURATION_TABLE = "ctanb.curation"
PRODUCT_INPUTS_TABLE = "ctanb.product_inputs"
#: Every activity of each published product's whole lineage (``provenance.product_activity``):
#: the closure ADQL cannot compute (no recursive queries), kept at publication.
PRODUCT_ACTIVITIES_TABLE = "ctanb.product_activities"


class PublishRefused(CtanbError):
    """A publication the archive refuses; ``condition`` names the check that failed."""

    def __init__(self, condition: str, message: str, status: int = 400) -> None:
        super().__init__(f"publication refused ({condition}): {message}")
        self.condition = condition
        self.status = status


class Curation(BaseModel):
    """Curation of a published product (the science-archive talk's list).

    Every field is optional; ``analysis`` groups products of one analysis
    (DataLink ``#coderived``); without it, products sharing an activity are coderived.
    """

    model_config = ConfigDict(extra="forbid")

    # Free text is stored as given (never interpreted); lengths are bounded so a
    # curation record stays a record, not a place to store megabytes.
    title: str | None = Field(None, max_length=300)
    #: Set by the archive from the publishing token's identity; a different name is refused.
    publisher: str | None = Field(None, max_length=200)
    creator: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200)
    version: str = Field("1", max_length=40)
    creation_type: str = Field("analysis", max_length=40)
    reference: str | None = Field(None, max_length=500)
    analysis: str | None = Field(None, max_length=200)
    background_method: str | None = Field(None, max_length=200)
    cuts_description: str | None = Field(None, max_length=2000)
    fit_hypothesis: str | None = Field(None, max_length=500)


@dataclass(frozen=True)
class PublishResult:
    """The outcome of a publication: its DID, and whether this call created it."""

    did: str
    created: bool
    data_rights: str
    release_date: str | None
    access_url: str


def product_did(entity_id: str, content_sha256: str) -> str:
    """The publisher DID of a product: the same record and content give the same DID."""
    key = hashlib.sha256(f"{entity_id}\n{content_sha256}".encode()).hexdigest()[:24]
    return f"{PUBLISHER_AUTHORITY}/products?{key}"


def create_publish_schema(conn: sqlite3.Connection) -> None:
    """Create the private tables of publications (idempotent; no commit)."""
    conn.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS {q(PRODUCT_INPUTS_TABLE)} (
            product_did TEXT NOT NULL, input_did TEXT NOT NULL,
            PRIMARY KEY (product_did, input_did));
        CREATE INDEX IF NOT EXISTS "ctanb.product_inputs#input"
            ON {q(PRODUCT_INPUTS_TABLE)} (input_did);
        CREATE TABLE IF NOT EXISTS {q(PRODUCT_ACTIVITIES_TABLE)} (
            product_did TEXT NOT NULL, activity_id TEXT NOT NULL,
            PRIMARY KEY (product_did, activity_id));
        CREATE INDEX IF NOT EXISTS "ctanb.product_activities#activity"
            ON {q(PRODUCT_ACTIVITIES_TABLE)} (activity_id);
        CREATE TABLE IF NOT EXISTS {q(CURATION_TABLE)} (
            did TEXT PRIMARY KEY, entity_id TEXT, analysis TEXT, curation TEXT,
            signer TEXT, published_at TEXT, prov_json TEXT);
        """
    )
    from .provtap import create_provtap_schema, fill_product_activities

    create_provtap_schema(conn)
    _create_curation_view(conn)
    fill_product_activities(conn)  # products published before the table existed


#: Columns of the TAP table ``products.curation`` (joins ObsCore on obs_publisher_did).
CURATION_COLUMNS = (
    ("obs_publisher_did", "meta.ref.ivoid", "The published product"),
    ("publisher", "meta.curation", "Who published it (default: the token's groups)"),
    ("creator", "meta.id;meta.curation", "Who made it"),
    ("contact", "meta.email;meta.curation", "Whom to ask about it"),
    ("version", "meta.version;meta.curation", "Version of the product"),
    ("creation_type", "meta.code;meta.curation", "How it was made (analysis, ...)"),
    ("curation_date", "time.release;meta.curation", "When it was published"),
    ("reference", "meta.bib;meta.curation", "Where it is described"),
    ("analysis", "meta.id", "Name of the analysis it belongs to (DataLink #coderived)"),
    ("background_method", "meta.code;meta.software", "Background method of the analysis"),
    ("cuts_description", "meta.note", "Cuts applied in the analysis, in words"),
    ("fit_hypothesis", "meta.note;spect", "Model fitted (spectral or spatial hypothesis)"),
    ("signer", "meta.id;meta.curation", "Key that signed its provenance record, if any"),
)


def _create_curation_view(conn: sqlite3.Connection) -> None:
    fields = {
        "obs_publisher_did": "did",
        "curation_date": "published_at",
        "analysis": "analysis",
        "signer": "signer",
    }
    select = ", ".join(
        f"{fields[name]} AS {name}" if name in fields
        else f"json_extract(curation, '$.{name}') AS {name}"
        for name, _, _ in CURATION_COLUMNS
    )  # fmt: skip
    conn.execute(
        f'CREATE VIEW IF NOT EXISTS "products.curation" AS SELECT {select} FROM {q(CURATION_TABLE)}'
    )
    conn.execute(
        'INSERT OR REPLACE INTO "tap_schema.schemas" VALUES (?, NULL, ?, ?)',
        ("products", "Curation of products published into this archive", 3),
    )
    conn.execute(
        'INSERT OR REPLACE INTO "tap_schema.tables" VALUES (?, ?, ?, NULL, ?, ?)',
        ("products", "products.curation", "view",
         "Curation and analysis context of published products (join ivoa.obscore on "
         "obs_publisher_did)", 30),
    )  # fmt: skip
    conn.executemany(
        'INSERT OR REPLACE INTO "tap_schema.columns" '
        "VALUES (?, ?, 'char', '*', NULL, NULL, ?, NULL, NULL, ?, ?, 1, 0, ?)",
        [("products.curation", name, desc, ucd, int(i == 0), i)
         for i, (name, ucd, desc) in enumerate(CURATION_COLUMNS)],
    )  # fmt: skip


# -- checks ------------------------------------------------------------------------------
def _check_record(path: Path) -> tuple[Any, Any, str | None]:
    from ..provenance.fits import read_signature
    from ..provenance.verify import integrity, product_entity

    try:
        graph, entity = product_entity(path)
    except ProvenanceError as exc:
        raise PublishRefused("provenance", str(exc).replace(str(path), "the product")) from None
    # Content against the record, and a signature that matches it; a signer the archive
    # does not know is accepted (the archive checks the inputs itself).
    found = integrity(path, entity)
    if found.problems:
        raise PublishRefused("content", "; ".join(found.problems))
    if found.old_record:
        raise PublishRefused("content", found.unauthenticated or "record too old to check")
    signature, _ = read_signature(path)
    if signature is None:
        # An unsigned record can be written by anyone around any file: refused. A
        # signature by a key the archive does not know is accepted (see the module
        # docstring); its signer is kept in the curation record.
        raise PublishRefused(
            "content", "the product is not signed: make it with ctanb's steps, which sign it"
        )
    signer = f"{signature.signer} ({signature.fingerprint})"
    return graph, entity, signer


def _check_steps(graph: Any, product_id: str) -> None:
    """Every activity of the lineage is one of ctanb's registered steps (the rule of redo)."""
    bad = check_steps(graph, product_id)
    if bad:
        raise PublishRefused(
            "steps",
            f"activit{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)} "
            f"{'are' if len(bad) > 1 else 'is'} not one of ctanb's registered analysis steps: "
            "only products made by ctanb's steps are published (they can be redone)",
        )


def _recorded_did(entity: Any) -> str | None:
    attrs = entity.attributes or {}
    return (
        entity.publisher_did
        or (attrs.get("obscore") or {}).get("obs_publisher_did")
        or attrs.get("obs_publisher_did")
    )


def _obscore_row(conn: sqlite3.Connection, did: str) -> dict[str, Any] | None:
    cur = conn.execute(
        f'SELECT *, "_access_group" FROM {q(OBSCORE_TABLE)} WHERE obs_publisher_did = ?', (did,)
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def _check_inputs(conn: sqlite3.Connection, leaves: list[Any],
                  sent: dict[str, Path] | None = None) -> Inputs:  # fmt: skip
    found = classify_inputs(conn, leaves, recorded_did=_recorded_did, dataset_sha=_file_sha256,
                            products=PRODUCT_COLLECTION, sent=sent)  # fmt: skip
    if found.problems:
        raise PublishRefused("inputs", "; ".join(found.problems))
    return found


def _check_rights(policy: Any, inputs: list[dict[str, Any]], token: str | None) -> tuple:
    """(data_rights, release date, access group) the product inherits."""
    groups = policy.groups_for_token(token) if token else set()
    if not groups:
        raise PublishRefused(
            "token",
            "publishing needs a token of this archive: send 'Authorization: Bearer <token>'"
            if not token
            else "the token sent is not known to this archive",
            status=401,
        )
    closed: dict[str, str | None] = {}
    for row in inputs:
        group, release = row.get("_access_group"), row.get("obs_release_date")
        if not group or policy.is_released(release):
            continue
        if group not in groups:
            when = str(release)[:10] if release else "an unknown date"
            raise PublishRefused(
                "rights",
                f"input obs {row['obs_id']} ({row['obs_publisher_did']}) is proprietary to "
                f"group {group} until {when}, and the token sent does not belong to it",
                status=403,
            )
        closed[group] = max(filter(None, [closed.get(group), release]), default=None)
    if not closed:
        return "public", None, None
    release = max((r for r in closed.values() if r), default=None)
    return "proprietary", release, "+".join(sorted(closed))


def _with_publisher(cur: Curation, policy: Any, token: str | None) -> Curation:
    """*cur* with the publisher the token authenticates (never one the client names)."""
    find = getattr(policy, "identity_for_token", None)
    who = (find(token) if find else None) or ", ".join(sorted(policy.groups_for_token(token)))
    if cur.publisher and cur.publisher != who:
        raise PublishRefused(
            "curation",
            f"the publisher is the identity of the token sent ({who}), not {cur.publisher!r}: "
            "leave 'publisher' out of the curation",
            status=403,
        )
    return cur.model_copy(update={"publisher": who})


# -- the transaction ---------------------------------------------------------------------
def _existing(conn: sqlite3.Connection, did: str) -> dict[str, Any] | None:
    return _obscore_row(conn, did)


def _changed_curation(conn: sqlite3.Connection, did: str, cur: Curation) -> list[str]:
    """Curation fields the client gave that differ from the published ones."""
    import json

    found = conn.execute(f"SELECT curation FROM {q(CURATION_TABLE)} WHERE did = ?", (did,))
    row = found.fetchone()
    old = json.loads(row[0]) if row and row[0] else {}
    given = cur.model_fields_set - {"publisher"}
    return sorted(k for k in given if old.get(k) != getattr(cur, k))


def publish_file(
    db: str | Path,
    path: str | Path,
    *,
    policy: Any,
    token: str | None,
    curation: dict[str, Any] | Curation | None = None,
    products_dir: str | Path | None = None,
    before_commit: Callable[[], None] | None = None,
    inputs: dict[str, Path] | None = None,
) -> PublishResult:
    """Check the product at *path* and publish it into the archive database *db*.

    Parameters
    ----------
    db : path
        The archive database (opened for writing here only).
    path : path
        The uploaded product (a temporary file; copied, never moved).
    policy : AccessPolicy
        Groups, tokens and release dates.
    token : str, optional
        The publisher's bearer token.
    curation : dict or Curation, optional
        Curation fields (:class:`Curation`).
    products_dir : path, optional
        Where published files live (default: ``<db folder>/products``).
    before_commit : callable, optional
        Called inside the transaction just before the commit (tests inject failures).
    inputs : dict of str to path, optional
        Files sent with the product (name -> file): the models or configuration files
        its lineage used (:mod:`.publish_inputs`), stored with it.

    Returns
    -------
    PublishResult
        The product's DID; ``created`` is False when it was already published.

    Raises
    ------
    PublishRefused
        A check failed; ``condition`` says which.
    """
    from . import db as archive_db
    from .coverage import add_to_coverage
    from .provtap import fill_product_activities, insert_product_provenance

    path = Path(path)
    try:
        cur = curation if isinstance(curation, Curation) else Curation(**(curation or {}))
    except ValidationError as exc:
        problems = describe_errors(exc, unknown="unknown curation field")
        raise PublishRefused("curation", f"bad curation fields: {problems}") from None
    graph, entity, signer = _check_record(path)
    _check_steps(graph, entity.id)
    did = product_did(entity.id, entity.data_sha256 or "")
    # Absolute: a relative path in ctanb.files is read relative to the data folder.
    products = (Path(products_dir) if products_dir else Path(db).parent / "products").resolve()
    products.mkdir(parents=True, exist_ok=True)
    conn = archive_db.connect(db)
    try:
        create_publish_schema(conn)
        conn.commit()
        found = _check_inputs(conn, _dl3_leaves(graph, entity.id), inputs)
        inputs = found.datasets
        rights, release, group = _check_rights(policy, inputs, token)
        _check_calibration(policy, found, token)
        cur = _with_publisher(cur, policy, token)
        access_url = ACCESS_URL_BASE + "files/" + urllib.parse.quote(did, safe="")
        conn.execute("BEGIN IMMEDIATE")
        if _existing(conn, did) is not None:
            changed = _changed_curation(conn, did, cur)
            conn.rollback()
            if changed:
                raise PublishRefused(
                    "curation",
                    f"{did} is already published, with other curation "
                    f"({', '.join(changed)}): the curation of a published product cannot "
                    "change; publish without curation to get its DID",
                    status=409,
                )
            return PublishResult(did, False, rights, release, access_url)
        owner = analysis_owner(conn, CURATION_TABLE, cur.analysis)
        if owner is not None and owner != cur.publisher:
            conn.rollback()
            raise PublishRefused(
                "analysis",
                f"the analysis {cur.analysis!r} belongs to another publisher (the first to "
                "publish under it): publish under an analysis name of your own",
                status=409,
            )
        # What ProvTAP/ProvSAP serve: no local paths, the publisher's archive identity.
        public = public_graph(graph, found.dids, cur.publisher)
        # The analysis context the provenance tells, unless the publisher said it.
        told = analysis_context(graph, entity)
        cur = cur.model_copy(update={k: v for k, v in told.items() if not getattr(cur, k)})
        row = obscore_values(path, public, entity, inputs, cur)
        row.update(
            obs_publisher_did=did,
            obs_id=did.rsplit("?", 1)[1],
            access_url=access_url,
            data_rights=rights,
            obs_release_date=release,
        )
        key = did.rsplit("?", 1)[1]
        final = products / f"{key}.fits"
        part = products / f".{key}.fits.part-{os.getpid()}"
        data = path.read_bytes()
        file_sha = hashlib.sha256(data).hexdigest()
        user_files = user_input_files(products / "inputs", found.user)
        upsert_dataset(
            conn,
            row,
            [FileRecord("#this", str(final), size=len(data), sha256=file_sha,
                        description=f"The published product ({row['dataproduct_subtype']})"),
             *user_files],
            access_group=group,
        )  # fmt: skip
        if hea := product_hea_row(conn, row, [r["obs_publisher_did"] for r in inputs]):
            upsert_hea(conn, hea)  # t_intervals: the union of the runs' GTIs (issue 18)
        conn.executemany(
            f"INSERT OR IGNORE INTO {q(PRODUCT_INPUTS_TABLE)} VALUES (?, ?)",
            [(did, r["obs_publisher_did"]) for r in inputs],
        )
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        conn.execute(
            f"INSERT INTO {q(CURATION_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (did, entity.id, cur.analysis, cur.model_dump_json(), signer, now,
             public.serialize("json")),
        )  # fmt: skip
        insert_product_provenance(conn, did, public, entity.id, group, release)
        fill_product_activities(conn, did)
        add_to_coverage(conn, did)  # the archive's coverage MOCs (issue 18)
        created: list[Path] = []
        try:
            write_user_inputs(found.user, user_files, created)
            with part.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if before_commit is not None:
                before_commit()
            os.replace(part, final)
            conn.commit()
        except BaseException:
            conn.rollback()
            part.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            remove_user_inputs(created)
            raise
        return PublishResult(did, True, rights, release, access_url)
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    finally:
        conn.close()
