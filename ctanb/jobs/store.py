"""The job store: one SQL table of jobs, SQLite per user or any SQLAlchemy URL for a hub.

Every process that touches a job (the notebook kernel, the job's own runner
process, a Dask worker) reads and writes the same table, so the job list
survives a kernel restart and a runner writes its own phase transitions.

SQLite runs in WAL mode with a busy timeout, and writers take the lock at
``BEGIN IMMEDIATE`` so that a phase change is an atomic read-check-write: a
runner finishing just after an abort cannot turn ABORTED back into COMPLETED.
On PostgreSQL the same is done with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from .._errors import JobError
from .._sqlstore import engine_for, normalise_url, safe_url, write_with_retry
from .model import JobProvenance, JobRecord, Phase, decode_results, encode_results, now

__all__ = ["JobStore", "default_store_url"]

metadata = sa.MetaData()
_S = sa.String(255)
job_table = sa.Table(
    "ctanb_job",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("name", _S),
    sa.Column("owner", _S),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("parameters", sa.Text),
    sa.Column("results", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("error_type", _S),
    sa.Column("error_details", sa.Text),
    sa.Column("created", sa.String(40)),
    sa.Column("started", sa.String(40)),
    sa.Column("ended", sa.String(40)),
    sa.Column("history", sa.Text),
    sa.Column("executor", sa.String(16)),
    sa.Column("host", _S),
    sa.Column("pid", sa.Integer),
    sa.Column("pid_start", sa.Float),
    sa.Column("work_dir", sa.Text),
    sa.Column("log_path", sa.Text),
    sa.Column("provenance", sa.Text),
    sa.Column("rerun_of", sa.String(40)),
    sa.Index("ix_ctanb_job_phase", "phase"),
    sa.Index("ix_ctanb_job_owner_created", "owner", "created"),
)

_JSON_FIELDS = ("parameters", "history")


def default_store_url() -> str:
    """``CTANB_JOBS_URL``, or the SQLite file ``<home_dir>/jobs.db``.

    Returns
    -------
    str
        A SQLAlchemy URL or a file path.
    """
    from .._settings import home_dir

    return os.environ.get("CTANB_JOBS_URL") or f"sqlite:///{home_dir() / 'jobs.db'}"


class JobStore:
    """A job database.

    Parameters
    ----------
    url : str or path, optional
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``)
        or a path to a SQLite file. Default: :func:`default_store_url`.
    """

    def __init__(self, url: str | Path | None = None) -> None:
        self.url = normalise_url(url if url is not None else default_store_url())
        try:
            self.engine = engine_for(self.url)
            self._write(lambda conn: metadata.create_all(conn))
        except JobError:
            raise
        except Exception as exc:
            raise JobError(f"cannot open the job store {self.safe_url}: {exc}") from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return safe_url(self.url)

    def __repr__(self) -> str:
        return f"JobStore({self.safe_url!r})"

    # -- low level -------------------------------------------------------------------------
    def _write(self, work: Any) -> Any:
        return write_with_retry(
            self.engine, work, error=JobError, label=f"job store {self.safe_url}"
        )

    def _read(self, stmt: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt))
        except OperationalError as exc:
            raise JobError(f"job store {self.safe_url}: {exc.orig}") from None

    @staticmethod
    def _row(record: JobRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "kind": record.kind,
            "target": record.target,
            "name": record.name,
            "owner": record.owner,
            "phase": str(record.phase),
            "parameters": json.dumps(record.parameters),
            "results": encode_results(record.results),
            "error": record.error,
            "error_type": record.error_type,
            "error_details": record.error_details,
            "created": record.created,
            "started": record.started,
            "ended": record.ended,
            "history": json.dumps(record.history),
            "executor": record.executor,
            "host": record.host,
            "pid": record.pid,
            "pid_start": record.pid_start,
            "work_dir": record.work_dir,
            "log_path": record.log_path,
            "provenance": json.dumps(record.provenance.to_dict()),
            "rerun_of": record.rerun_of,
        }

    @staticmethod
    def _record(row: Any) -> JobRecord:
        data = dict(row._mapping)
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key]) if data[key] else ([] if key == "history" else {})
        data["history"] = [tuple(item) for item in data["history"]]
        data["results"] = decode_results(data["results"])
        data["phase"] = Phase(data["phase"])
        data["provenance"] = JobProvenance.from_dict(
            json.loads(data["provenance"]) if data["provenance"] else None
        )
        return JobRecord(**data)

    # -- public ----------------------------------------------------------------------------
    def add(self, record: JobRecord) -> None:
        """Insert a new job (its ``history`` starts with its current phase).

        Parameters
        ----------
        record : JobRecord
            The new job.
        """
        record.created = record.created or now()
        record.history = record.history or [(str(record.phase), record.created)]
        row = self._row(record)
        self._write(lambda conn: conn.execute(job_table.insert(), [row]))

    def get(self, job_id: str) -> JobRecord:
        """The job *job_id*.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        JobRecord
            Its row.

        Raises
        ------
        JobError
            There is no such job.
        """
        rows = self._read(sa.select(job_table).where(job_table.c.id == job_id))
        if not rows:
            raise JobError(f"no job {job_id!r} in the job store {self.safe_url}")
        return self._record(rows[0])

    def list(
        self,
        *,
        phase: str | Iterable[str] | None = None,
        owner: str | None = None,
        kind: str | None = None,
        limit: int | None = 500,
    ) -> list[JobRecord]:
        """Jobs matching every criterion given, newest first.

        Parameters
        ----------
        phase : str or iterable of str, optional
            Only jobs in these phases.
        owner : str, optional
            Only this owner's jobs.
        kind : str, optional
            Only jobs of this kind.
        limit : int, optional
            At most this many (None: all).

        Returns
        -------
        list of JobRecord
            Newest first.
        """
        stmt = sa.select(job_table)
        if phase is not None:
            phases = [phase] if isinstance(phase, str) else list(phase)
            stmt = stmt.where(job_table.c.phase.in_([str(Phase.parse(p)) for p in phases]))
        if owner is not None:
            stmt = stmt.where(job_table.c.owner == owner)
        if kind is not None:
            stmt = stmt.where(job_table.c.kind == kind)
        stmt = stmt.order_by(job_table.c.created.desc(), job_table.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [self._record(row) for row in self._read(stmt)]

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields of a job that do not change its phase (pid, log path, ...).

        Parameters
        ----------
        job_id : str
            The job.
        **fields
            Column values by name.

        Raises
        ------
        JobError
            *fields* holds ``phase`` (use :meth:`transition`) or an unknown column.
        """
        if "phase" in fields:
            raise JobError("the phase changes only through JobStore.transition")
        template = self._row(JobRecord(id=job_id, kind="", target=""))
        values = {k: self._field_value(k, v, template) for k, v in fields.items()}
        self._write(
            lambda conn: conn.execute(
                job_table.update().where(job_table.c.id == job_id).values(**values)
            )
        )

    @staticmethod
    def _field_value(key: str, value: Any, template: dict[str, Any]) -> Any:
        if key not in template:
            raise JobError(f"a job has no field {key!r}")
        if key == "results":
            return encode_results(value)
        if key == "provenance":
            return json.dumps(value.to_dict())
        if key in _JSON_FIELDS:
            return json.dumps(value)
        return value

    def transition(
        self, job_id: str, phase: Phase, *, allowed_from: Iterable[Phase], **fields: Any
    ) -> bool:
        """Move a job to *phase* if it is now in one of *allowed_from*; set *fields* too.

        Parameters
        ----------
        job_id : str
            The job.
        phase : Phase
            The new phase.
        allowed_from : iterable of Phase
            The phases the job may be in now.
        **fields
            Other column values to set in the same transaction.

        Returns
        -------
        bool
            False (and nothing changed) when the job is in another phase, so two
            processes racing to end a job cannot both win.

        Raises
        ------
        JobError
            There is no such job.
        """
        allowed = {str(p) for p in allowed_from}
        template = self._row(JobRecord(id=job_id, kind="", target=""))
        values = {k: self._field_value(k, v, template) for k, v in fields.items()}

        def work(conn: sa.Connection) -> bool:
            stmt = sa.select(job_table.c.phase, job_table.c.history).where(job_table.c.id == job_id)
            row = conn.execute(stmt.with_for_update()).first()
            if row is None:
                raise JobError(f"no job {job_id!r} in the job store {self.safe_url}")
            if row.phase not in allowed:
                return False
            history = [*json.loads(row.history or "[]"), [str(phase), now()]]
            conn.execute(
                job_table.update()
                .where(job_table.c.id == job_id)
                .values(phase=str(phase), history=json.dumps(history), **values)
            )
            return True

        return bool(self._write(work))

    def delete(self, job_id: str) -> None:
        """Remove a job's row (its files are the manager's business).

        Parameters
        ----------
        job_id : str
            The job.
        """
        self._write(lambda conn: conn.execute(job_table.delete().where(job_table.c.id == job_id)))
