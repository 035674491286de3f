# JupyterHub configuration of ctanb next to the archive (one host). Started by
# deploy/hub/up, which sets the environment below; see deploy/hub/README.md.
#
#   CTANB_HUB_IP, CTANB_HUB_PORT    where the hub listens (default 127.0.0.1:8000); the hub's
#   CTANB_HUB_INTERNAL_PORT, CTANB_HUB_PROXY_API_PORT  loopback ports (default PORT+1, +2)
#   CTANB_HUB_STATE                 folder of the hub database, cookie secret, homes
#   CTANB_TAP_URL                   the archive the users' servers query
#   CTANB_HUB_POLICY                the archive's access policy (default: ctanb's demo one)
#   CTANB_HUB_GROUP_MAP             optional YAML {hub group: policy group}
#   CTANB_HUB_GROUPS                optional YAML {hub group: [users]} loaded at start
#   CTANB_PROV_URL                  the shared provenance store (PostgreSQL)
#   CTANB_DASK_GATEWAY_ADDRESS      optional Dask Gateway (+ _PROXY_ADDRESS, _PUBLIC_ADDRESS)
#   CTANB_HUB_DASK_GATEWAY_PORT     run dask-gateway-server as the hub service `dask-gateway`,
#                                   its proxy on this loopback port (up sets it; see README)
#   CTANB_HUB_DASK_GATEWAY_API_PORT its private API port (default PORT+1)
#   CTANB_HUB_AUTH                  dummy | shared-password | oidc (ctanb.hub.authenticator_config)
#   CTANB_HUB_API_TOKEN             optional token of the `ctanb-admin` service (admin API)
#   CTANB_HUB_SPAWNER               simple (default: no system users) | localprocess
#   CTANB_HUB_PROXY                 path of configurable-http-proxy (up installs it)
import os
import secrets
import shutil
import sys
from pathlib import Path

import yaml

from ctanb.hub import ArchiveAccess, DaskGatewaySettings, authenticator_config, make_pre_spawn_hook

c = get_config()  # noqa: F821 (JupyterHub defines it)
env = os.environ
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STATE = Path(env.get("CTANB_HUB_STATE", ROOT / "var" / "hub")).resolve()
STATE.mkdir(parents=True, exist_ok=True)


def _yaml(name: str) -> dict:
    path = env.get(name)
    return (yaml.safe_load(Path(path).read_text()) or {}) if path else {}


# --- the hub itself: loopback by default, its state in one folder ------------------------
c.JupyterHub.ip = env.get("CTANB_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("CTANB_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env.get("CTANB_HUB_INTERNAL_PORT", "0")) or c.JupyterHub.port + 1
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
proxy = env.get("CTANB_HUB_PROXY") or HERE / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(proxy)]
api_port = int(env.get("CTANB_HUB_PROXY_API_PORT", "0")) or c.JupyterHub.port + 2
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{api_port}"

# --- who may log in ------------------------------------------------------------------------
for section, traits in authenticator_config(env).items():
    for name, value in traits.items():
        setattr(getattr(c, section), name, value)
groups = _yaml("CTANB_HUB_GROUPS")
if groups:
    c.JupyterHub.load_groups = {name: {"users": list(users)} for name, users in groups.items()}
c.JupyterHub.services = []
c.JupyterHub.load_roles = []
if env.get("CTANB_HUB_API_TOKEN"):
    # An admin service for scripts and tests (create users, set groups, start servers).
    c.JupyterHub.services.append({"name": "ctanb-admin", "api_token": env["CTANB_HUB_API_TOKEN"]})
    c.JupyterHub.load_roles.append({"name": "ctanb-admin", "scopes": ["admin:users",
                                    "admin:groups", "admin:servers", "access:servers", "tokens"],
                                    "services": ["ctanb-admin"]})  # fmt: skip

# --- the users' servers: ctanb's environment, archive credentials from the groups ----------
spawner = env.get("CTANB_HUB_SPAWNER", "simple")
c.JupyterHub.spawner_class = spawner
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
c.Spawner.default_url = "/lab/tree/notebooks"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
if spawner == "simple":
    c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
# Next to an archive, often offline: JupyterLab neither fetches news nor checks for
# updates (nor asks the user about it in a toast).
c.Spawner.args = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
if os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")
# Spawner.environment reaches the kernels (the hub's own environment does not).
c.Spawner.environment = {"CTANB_OFFLINE": env.get("CTANB_OFFLINE", "1")}
if env.get("CTANB_DATA"):
    c.Spawner.environment["CTANB_DATA"] = env["CTANB_DATA"]

# --- Dask: a dask-gateway-server run by the hub, or a gateway elsewhere -------------------


def _local_dask_gateway(port: int, api_port: int) -> DaskGatewaySettings:
    """Run dask-gateway-server as the managed hub service ``dask-gateway``.

    Its proxy listens on 127.0.0.1:*port*: HTTP (the REST API, dashboards) under
    /services/dask-gateway, reached through the hub's proxy, and the TLS scheduler
    traffic of the clients directly. Users authenticate with their hub token
    (JupyterHubAuthenticator); clusters run as local processes of the hub's own user
    (UnsafeLocalBackend: no system users needed, no separation between users; the
    Kubernetes backend of helm/dask-gateway-values.yaml is the production setup).
    """
    workdir = STATE / "dask-gateway"
    workdir.mkdir(exist_ok=True)
    bin_dir = Path(sys.executable).parent
    prefix = "/services/dask-gateway"
    settings = {
        "DaskGateway.authenticator_class": "dask_gateway_server.auth.JupyterHubAuthenticator",
        "DaskGateway.backend_class": "dask_gateway_server.backends.local.UnsafeLocalBackend",
        "DaskGateway.address": f"127.0.0.1:{api_port}",
        "Proxy.address": f"127.0.0.1:{port}",  # tcp_address: the same port
        "Proxy.prefix": prefix,
        "LocalBackend.clusters_directory": str(workdir / "clusters"),
        # `dask scheduler`/`dask worker` of ctanb's environment (ctanb, gammapy importable).
        "ClusterConfig.scheduler_cmd": [str(bin_dir / "dask"), "scheduler"],
        "ClusterConfig.worker_cmd": [str(bin_dir / "dask"), "worker"],
        # One BLAS thread per worker process (as ctanb's LocalCluster): cores are workers.
        "ClusterConfig.environment": {
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        },
        "ClusterConfig.cluster_max_workers": int(env.get("CTANB_DASK_GATEWAY_MAX_WORKERS", "8")),
        "ClusterConfig.idle_timeout": 3600.0,  # a forgotten cluster stops after an idle hour
    }
    config = workdir / "dask_gateway_config.py"
    config.write_text(
        "# Written by deploy/hub/jupyterhub_config.py at each hub start: edit that file.\n"
        "c = get_config()  # noqa: F821\n"
        + "".join(f"c.{name} = {value!r}\n" for name, value in settings.items())
    )
    c.JupyterHub.services.append({
        "name": "dask-gateway",
        "url": f"http://127.0.0.1:{port}",
        "api_token": secrets.token_hex(32),
        "command": [str(bin_dir / "dask-gateway-server"), "-f", str(config)],
        "cwd": str(workdir),
    })  # fmt: skip
    # JupyterHubAuthenticator admits tokens with access to the service: every user may
    # use it, also through their server's token (which has only the `server` role).
    c.JupyterHub.load_roles += [
        {"name": "user", "scopes": ["self", "access:services!service=dask-gateway"]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server",
                                     "access:services!service=dask-gateway"]},
    ]  # fmt: skip
    host = c.JupyterHub.ip if c.JupyterHub.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    hub_url = f"http://{host}:{c.JupyterHub.port}"
    return DaskGatewaySettings(
        address=hub_url + prefix,
        proxy_address=f"gateway://127.0.0.1:{port}",
        public_address=env.get("CTANB_DASK_GATEWAY_PUBLIC_ADDRESS") or None,
    )


gateway = None
if env.get("CTANB_HUB_DASK_GATEWAY_PORT"):
    gateway_port = int(env["CTANB_HUB_DASK_GATEWAY_PORT"])
    gateway_api_port = int(env.get("CTANB_HUB_DASK_GATEWAY_API_PORT", "0")) or gateway_port + 1
    gateway = _local_dask_gateway(gateway_port, gateway_api_port)
elif env.get("CTANB_DASK_GATEWAY_ADDRESS"):
    gateway = DaskGatewaySettings(
        address=env["CTANB_DASK_GATEWAY_ADDRESS"],
        proxy_address=env.get("CTANB_DASK_GATEWAY_PROXY_ADDRESS"),
        public_address=env.get("CTANB_DASK_GATEWAY_PUBLIC_ADDRESS"),
    )
ACCESS = ArchiveAccess(
    tap_url=env.get("CTANB_TAP_URL", "http://127.0.0.1:8080/tap"),
    policy_path=env.get("CTANB_HUB_POLICY") or None,
    group_map=_yaml("CTANB_HUB_GROUP_MAP"),
    prov_url=env.get("CTANB_PROV_URL") or None,
    dask_gateway=gateway,
)
ACCESS.policy()  # a broken policy file stops the hub at start, with the reason
archive_hook = make_pre_spawn_hook(ACCESS)


def pre_spawn_hook(spawner):
    archive_hook(spawner)
    if spawner.__class__.__name__ == "SimpleLocalProcessSpawner":
        # Each user starts with their own copy of the tutorials (kept once edited).
        home = Path(spawner.home_dir_template.format(username=spawner.user.name))
        if not (home / "notebooks").exists():
            shutil.copytree(ROOT / "notebooks", home / "notebooks",
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # fmt: skip


c.Spawner.pre_spawn_hook = pre_spawn_hook
