"""Executors: where a job's process runs — a local detached process, or a Dask cluster.

Either way the job runs in its own process (``python -m ctanb.jobs``),
started in a new session so that it is isolated from the notebook kernel,
survives a kernel restart, and can be aborted as a whole process group. On Dask
a worker task starts that process and waits for it, so the cluster schedules
the jobs while abort still kills the job's whole process tree; the workers must
reach the same job store (a shared file system or a database URL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._errors import ConfigError, JobError

__all__ = [
    "DaskExecutor",
    "LocalExecutor",
    "kill_process_group",
    "launch_runner",
    "process_alive",
]

#: The runner's environment variable carrying the target its launcher checked.
TARGET_ENV = "CTANB_JOB_TARGET"


def launch_runner(
    job_id: str, store_url: str, work_dir: str, log_path: str, *, target: str | None = None
) -> subprocess.Popen:
    """Start the runner of *job_id* as a detached process (own session), output to the log.

    *target* is the ``module:qualname`` the submitting process checked; the runner
    refuses a job whose stored target differs (a record changed in the store).
    """
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CTANB_JOBS_URL=store_url, PYTHONUNBUFFERED="1")
    env.pop(TARGET_ENV, None)
    if target is not None:
        env[TARGET_ENV] = target
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ctanb.jobs", job_id],
            cwd=work_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )


def process_alive(pid: int | None, pid_start: float | None, host: str | None) -> bool | None:
    """Whether the process *pid* that started at *pid_start* on *host* still runs.

    None when it cannot be told (another host, or no pid recorded yet). A
    zombie, or a new process that reuses the pid, counts as gone.
    """
    import psutil

    if pid is None or host != socket.gethostname():
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if pid_start is not None and abs(proc.create_time() - pid_start) > 1.0:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return True


def kill_process_group(pid: int, *, grace: float = 3.0) -> None:
    """Terminate the process group led by *pid* (SIGTERM, then SIGKILL after *grace* s)."""
    import psutil

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise JobError(f"not allowed to stop the job process {pid}: {exc}") from None
    try:
        psutil.Process(pid).wait(timeout=grace)
    except psutil.TimeoutExpired:
        pass
    except psutil.NoSuchProcess:
        pass
    try:  # whatever of the group is left (children that ignored SIGTERM)
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalExecutor:
    """Run each job as a detached process on this machine (the default)."""

    name = "local"

    def __init__(self) -> None:
        self._processes: dict[str, subprocess.Popen] = {}

    def start(
        self,
        job_id: str,
        store_url: str,
        work_dir: str,
        log_path: str,
        *,
        target: str | None = None,
    ) -> int:
        """Start the job's process.

        Parameters
        ----------
        job_id : str
            The job.
        store_url : str
            The job store the job reads its parameters from and writes its state to.
        work_dir : str
            The job's own folder.
        log_path : str
            The file the job's log goes to.
        target : str, optional
            The ``module:qualname`` the job may run (checked by the manager).

        Returns
        -------
        int
            The process id (the leader of the job's own process group).
        """
        proc = launch_runner(job_id, store_url, work_dir, log_path, target=target)
        self._processes[job_id] = proc
        return proc.pid

    def reap(self) -> None:
        """Collect the exit status of finished job processes (no zombies left behind)."""
        for job_id, proc in list(self._processes.items()):
            if proc.poll() is not None:
                del self._processes[job_id]

    def cancel(self, job_id: str) -> None:
        """Nothing to do beyond killing the process group (done by the manager).

        Parameters
        ----------
        job_id : str
            The job.
        """
        self.reap()

    def failure(self, job_id: str) -> str | None:
        """Local processes are checked by pid; no extra failure information.

        Parameters
        ----------
        job_id : str
            The job.

        Returns
        -------
        None
            Always.
        """
        return None

    def close(self) -> None:
        """Reap what has finished; running jobs keep running."""
        self.reap()


def _dask_task(
    job_id: str, store_url: str, work_dir: str, log_path: str, target: str | None = None
) -> str:
    """The Dask task of a job: start its runner process and wait for it, killing it on abort."""
    from .model import Phase
    from .store import JobStore

    store = JobStore(store_url)
    proc = launch_runner(job_id, store_url, work_dir, log_path, target=target)
    checked = 0.0
    while proc.poll() is None:
        time.sleep(0.05)
        if time.monotonic() - checked > 0.5:  # aborted from a machine that cannot kill it
            checked = time.monotonic()
            if store.get(job_id).phase == Phase.ABORTED:
                kill_process_group(proc.pid)
    return str(store.get(job_id).phase)


class DaskExecutor:
    """Run jobs on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``). Without it a ``LocalCluster``
        is started (``cluster_options`` go to it, e.g. ``n_workers=2``).
    client : distributed.Client, optional
        An existing client to use instead.
    **cluster_options
        Passed to the ``LocalCluster`` started without *address*.
    """

    name = "dask"

    def __init__(
        self, address: str | None = None, *, client: Any = None, **cluster_options: Any
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                'the Dask executor needs dask.distributed: pip install "dask[distributed]"'
            ) from None
        self._own_cluster = None
        if client is not None:
            self.client = client
        elif address:
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler {address}: {exc}") from None
        else:
            options = {"n_workers": 1, "threads_per_worker": 4, "processes": False}
            options.update(cluster_options)
            options.setdefault("dashboard_address", ":0")  # never clash with a running one
            self._own_cluster = LocalCluster(**options)
            self.client = Client(self._own_cluster)
        self._futures: dict[str, Any] = {}

    def start(
        self,
        job_id: str,
        store_url: str,
        work_dir: str,
        log_path: str,
        *,
        target: str | None = None,
    ) -> None:
        """Submit the job's task to the cluster.

        Parameters
        ----------
        job_id : str
            The job.
        store_url : str
            The job store the job reads its parameters from and writes its state to.
        work_dir : str
            The job's own folder.
        log_path : str
            The file the job's log goes to.
        target : str, optional
            The ``module:qualname`` the job may run (checked by the manager).
        """
        self._futures[job_id] = self.client.submit(
            _dask_task,
            job_id,
            store_url,
            work_dir,
            log_path,
            target,
            key=f"ctanb-job-{job_id}",
            pure=False,
        )

    def cancel(self, job_id: str) -> None:
        """Cancel the job's task (a queued task never starts).

        Parameters
        ----------
        job_id : str
            The job.
        """
        future = self._futures.pop(job_id, None)
        if future is not None:
            future.cancel()

    def failure(self, job_id: str) -> str | None:
        """Why the job's task failed on the cluster, when it did.

        Parameters
        ----------
        job_id : str
            The job.

        Returns
        -------
        str or None
            The task's error, or None when it did not fail (or is unknown).
        """
        future = self._futures.get(job_id)
        if future is None or future.status not in ("error", "lost"):
            return None
        if future.status == "lost":
            return f"the Dask task of job {job_id} was lost (its worker died)"
        return f"the Dask task of job {job_id} failed: {future.exception()!r}"

    def reap(self) -> None:
        """Forget the futures of finished tasks."""
        for job_id, future in list(self._futures.items()):
            if future.status == "finished":
                del self._futures[job_id]

    def close(self) -> None:
        """Close the client (and the cluster it started)."""
        self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()
