"""The hub's own Dask Gateway (``deploy/hub/up --dask-gateway``): a real
dask-gateway-server run by JupyterHub as its service ``dask-gateway``, users
authenticated by their hub token, clusters as local processes.

In a spawned user's kernel, a :class:`~ctanb.analysis.MapDatasetStep` reduces
H.E.S.S. runs on a gateway cluster of two workers
(``ParallelConfig(backend="dask", gateway=True)``) and serially: the maps are
identical, and the gateway's own records show the cluster it started for that
user, its two workers, and that it was stopped after the run. ``deploy/hub/down``
stops a cluster a user left running.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest
import requests
from test_analysis_maps import MSH_CONFIG
from test_hub import Hub, _up

RUNS = [20136, 20137]
# MSH 15-52, the map dataset part of the map tests' configuration.
CONFIG = {key: value for key, value in MSH_CONFIG.items() if key != "excess_map"}
# The gateway does not need the archive: no DaCHS, a TAP URL nothing listens at.
NO_ARCHIVE = "http://127.0.0.1:9/tap"

REDUCE = """
import json, tempfile
import numpy as np
from dask_gateway import Gateway
from ctanb.analysis import MapDatasetStep, ParallelConfig, inputs_from_datastore

runs = inputs_from_datastore({datastore!r}, {runs!r})
step = MapDatasetStep({config!r})
out = tempfile.mkdtemp()
serial = step.run(runs, out + "/serial", parallel=ParallelConfig(progress=False))
gateway = Gateway()
before = [c.name for c in gateway.list_clusters()]
on_gateway = step.run(runs, out + "/gateway", parallel=ParallelConfig(
    backend="dask", gateway=True, n_workers=2, progress=False))
running_after = [c.name for c in gateway.list_clusters()]
maps = ("counts", "background", "exposure", "mask_safe")
print(json.dumps({{
    "identical": {{m: bool(np.array_equal(getattr(serial.dataset, m).data,
                                         getattr(on_gateway.dataset, m).data)) for m in maps}},
    "counts": int(serial.dataset.counts.data.sum()),
    "obs_ids": [serial.obs_ids, on_gateway.obs_ids],
    "before": before, "running_after": running_after,
}}))
"""

LEAVE_RUNNING = """
from dask_gateway import GatewayCluster
cluster = GatewayCluster(shutdown_on_close=False)
cluster.scale(1)
client = cluster.get_client()
print(cluster.name, client.run_on_scheduler(__import__("os").getpid))
"""


def _gateway_log(hub: Hub) -> str:
    # The gateway is a hub-managed service: its log is in the hub's.
    return (hub.state / "hub.log").read_text()


def _cluster_processes(state: Path) -> list[int]:
    """Processes working in the gateway's folder of this hub (schedulers, workers, proxy)."""
    folder = str(state / "dask-gateway")
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = str(proc.joinpath("cwd").readlink())
        except OSError:
            continue
        if cwd == folder or cwd.startswith(folder + "/"):
            found.append(int(proc.name))
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_reduction_on_the_hubs_gateway_equals_serial(tmp_path_factory, data_dir):
    with _up(tmp_path_factory, "--tap-url", NO_ARCHIVE, "--dask-gateway") as hub:
        state = hub.state
        gateway_url = f"{hub.url}/services/dask-gateway/api/v1/clusters/"
        # Only hub tokens with access to the service get in (JupyterHubAuthenticator):
        # none at all, or the admin service's token (no access:services scope), is refused.
        assert requests.get(gateway_url, timeout=30).status_code == 401
        admin = {"Authorization": f"jupyterhub {hub.token}"}
        assert requests.get(gateway_url, headers=admin, timeout=30).status_code == 401

        hub.add_user("alice", ["students"])
        hub.spawn("alice")
        kernel = hub.kernel("alice")
        try:
            started = time.monotonic()
            code = REDUCE.format(datastore=str(data_dir / "hess-dl3-dr1"), runs=RUNS, config=CONFIG)
            outcome = json.loads(kernel.run(code))
            print(f"serial + gateway reduction of {len(RUNS)} runs: "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
            assert outcome["counts"] > 0
            assert outcome["identical"] == {
                "counts": True, "background": True, "exposure": True, "mask_safe": True
            }  # fmt: skip
            assert outcome["obs_ids"] == [[str(r) for r in RUNS]] * 2
            assert outcome["before"] == [] and outcome["running_after"] == []

            log = _gateway_log(hub)
            created = re.findall(r"Created cluster (\w+) for user alice", log)
            assert len(created) == 1, log[-3000:]
            (name,) = created
            workers = re.findall(rf"Created worker \w+ for cluster {name}", log)
            assert len(workers) == 2
            deadline = time.monotonic() + 30
            while f"Cluster {name} stopped" not in _gateway_log(hub):
                assert time.monotonic() < deadline, "the run's cluster was not stopped"
                time.sleep(0.5)

            # A cluster a user leaves running is stopped by deploy/hub/down.
            left, scheduler_pid = kernel.run(LEAVE_RUNNING).split()
            assert int(scheduler_pid) in _cluster_processes(state)
            proxy = re.search(r"Scheduler routes listening at gateway://127.0.0.1:(\d+)", log)
            gateway_port = int(proxy.group(1))
            assert _listening(gateway_port)
        finally:
            kernel.close()
    # _up has run deploy/hub/down; its last SIGKILLs take a moment to land.
    deadline = time.monotonic() + 20
    while (_cluster_processes(state) or _listening(gateway_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _cluster_processes(state) == []
    assert not _listening(gateway_port)
    assert f"Created cluster {left} for user alice" in _gateway_log(hub)


def test_an_unreachable_gateway_is_a_clear_service_error():
    import dask

    from ctanb import ServiceError
    from ctanb.analysis import ParallelConfig, parallel

    address = "http://127.0.0.1:9/services/dask-gateway"
    settings = {"gateway.address": address, "gateway.auth.type": "jupyterhub",
                "gateway.auth.kwargs": {"api_token": "user-token"}}  # fmt: skip
    with dask.config.set(settings):
        with pytest.raises(ServiceError, match=f"dask-gateway at {address} gave no cluster"):
            with parallel(ParallelConfig(backend="dask", gateway=True)):
                pass
