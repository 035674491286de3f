"""Persistence of the UWS jobs of one service: a SQLite file written on every change.

The job list survives a restart, including ``kill -9`` of the server: every phase
change is one committed transaction (WAL), and a result is stored in the same
transaction that makes the job COMPLETED, so a finished job is never listed
without its result. Jobs found QUEUED or EXECUTING at start-up were cut off by the
restart and become ERROR with "interrupted by a service restart".

The default file is ``CTANB_HOME/archive-jobs/<archive name>-<hash of its path>.db``:
the archive database itself is opened read-only and may lie in a read-only folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..._errors import ServiceError
from ..._settings import home_dir
from ..._sqlstore import engine_for, normalise_url, write_with_retry
from ..._uws import RUNNING_PHASES, Phase

if TYPE_CHECKING:
    from .uws import Job

__all__ = ["INTERRUPTED", "UWSJobStore", "default_store_path"]

#: The error message of a job cut off by a restart of the service.
INTERRUPTED = "interrupted by a service restart"

_META = sa.MetaData()
_JOBS = sa.Table(
    "uws_jobs",
    _META,
    sa.Column("job_id", sa.String, primary_key=True),
    sa.Column("owner", sa.String),
    sa.Column("run_id", sa.String),
    sa.Column("phase", sa.String, nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON: {NAME: [values]}
    sa.Column("base_url", sa.String, nullable=False),
    sa.Column("execution_duration", sa.Integer, nullable=False),
    sa.Column("creation", sa.String, nullable=False),
    sa.Column("start", sa.String),
    sa.Column("end", sa.String),
    sa.Column("destruction", sa.String, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result_type", sa.String, nullable=False),
    sa.Column("result_size", sa.Integer),
    sa.Column("result", sa.LargeBinary),
)


def default_store_path(db: Path) -> Path:
    """Where the jobs of the archive *db* are kept by default (in ``CTANB_HOME``)."""
    digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:12]
    return home_dir() / "archive-jobs" / f"{db.stem}-{digest}.db"


def _t(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


class UWSJobStore:
    """The jobs table of one service (SQLite via the project's SQL store layer).

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its folder).
    """

    def __init__(self, path: str | Path):
        self.url = normalise_url(path)
        self.label = f"the job store {Path(path)}"
        self.engine = engine_for(self.url)
        try:
            _META.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise ServiceError(f"{self.label} cannot be opened: {exc}") from None

    def _write(self, work: Any) -> None:
        write_with_retry(self.engine, work, error=ServiceError, label=self.label)

    def save(self, job: Job, result: bytes | None = None, phase: str | None = None) -> None:
        """Insert or update *job* (its result too, when given; *phase*: the phase it is
        about to take, default its current one)."""
        row = {
            "job_id": job.job_id,
            "owner": job.owner,
            "run_id": job.run_id,
            "phase": phase or job.phase,
            "params": json.dumps({k: job.params.getall(k) for k, _ in job.params.items()}),
            "base_url": job.base_url,
            "execution_duration": job.execution_duration,
            "creation": _t(job.creation),
            "start": _t(job.start),
            "end": _t(job.end),
            "destruction": _t(job.destruction),
            "error": job.error,
            "result_type": job.result_type,
            "result_size": job.result_size,
        }
        if result is not None:
            row["result"] = result

        def work(conn: sa.Connection) -> None:
            done = conn.execute(_JOBS.update().where(_JOBS.c.job_id == job.job_id).values(**row))
            if done.rowcount == 0:
                conn.execute(_JOBS.insert().values(**row))

        self._write(work)

    def delete(self, job_ids: list[str]) -> None:
        """Forget the jobs *job_ids* and their results."""
        if job_ids:
            self._write(lambda c: c.execute(_JOBS.delete().where(_JOBS.c.job_id.in_(job_ids))))

    def result(self, job_id: str) -> bytes | None:
        """The stored result of *job_id*, or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(_JOBS.c.result).where(_JOBS.c.job_id == job_id)
            ).scalar_one_or_none()

    def load(self, make_job: Any) -> list[Job]:
        """Every stored job (built by *make_job* from a dict); QUEUED/EXECUTING ones were
        interrupted by the restart and are stored back as ERROR."""
        self._write(
            lambda c: c.execute(
                _JOBS.update()
                .where(_JOBS.c.phase.in_(sorted(RUNNING_PHASES)))
                .values(phase=Phase.ERROR, error=INTERRUPTED, end=_t(dt.datetime.now(dt.UTC)))
            )
        )
        cols = [c for c in _JOBS.c if c.name != "result"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols)).mappings().all()
        jobs = []
        for row in rows:
            data = dict(row)
            data["params"] = json.loads(data["params"])
            data["phase"] = Phase(data["phase"])
            for key in ("creation", "start", "end", "destruction"):
                data[key] = _dt(data[key])
            jobs.append(make_job(data))
        return jobs
