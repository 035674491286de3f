"""JupyterHub next to the archive (deploy/hub): a real hub, real spawned servers.

``deploy/hub/up`` starts the hub on loopback (random ports, state in a temporary
folder) against the embedded archive of the test session (``--tap-url``) and with
the shared provenance database it creates on the local PostgreSQL. Users are created
and put in groups through the hub's REST API; their servers are spawned through it;
code runs in their kernels over the Jupyter kernel websocket, so what is checked is
exactly what a user's notebook sees: the archive token of the user's group opens
that group's proprietary files and no other group's. A second hub, brought up by the
same command next to DaCHS (``--archive-db``: deploy/dachs/up publishes the session's
archive), runs every tutorial against DaCHS in a spawned server; tests/test_notebooks.py
runs them against the embedded archive.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import jsonschema
import nbformat
import pytest
import requests
import websocket
import yaml
from traitlets.config import Config

from ctanb import ConfigError
from ctanb.archive.policy import AccessPolicy
from ctanb.hub import ArchiveAccess, DaskGatewaySettings, archive_credentials, authenticator_config

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "deploy" / "hub"
HELM = HUB / "helm"


# --- group -> token mapping ------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.demo()


def test_a_team_member_gets_exactly_the_teams_token(policy):
    creds = archive_credentials(["vela-team", "students"], policy)
    assert (creds.group, creds.token, creds.grants) == (
        "vela-team",
        "demo-token-vela",
        {"vela-team"},
    )
    assert "demo-token" not in repr(creds)


def test_a_group_already_included_adds_nothing(policy):
    creds = archive_credentials(["ctao-consortium", "vela-team"], policy)
    assert creds.group == "ctao-consortium"
    assert creds.grants == {"ctao-consortium", "vela-team", "pks2155-team", "mrk421-team",
                            "crab-team"}  # fmt: skip


def test_no_policy_group_means_public_data_only(policy):
    assert archive_credentials([], policy) is None
    assert archive_credentials(["students"], policy) is None
    env = ArchiveAccess(tap_url="http://127.0.0.1:1/tap").environment(["students"])
    assert env == {"CTANB_TAP_URL": "http://127.0.0.1:1/tap"}


def test_two_unrelated_teams_are_refused_rather_than_given_more(policy):
    with pytest.raises(ConfigError, match=r"includes: \['pks2155-team', 'vela-team'\]"):
        archive_credentials(["vela-team", "pks2155-team"], policy)


def test_identity_provider_groups_are_mapped(policy):
    urn = "urn:mace:egi.eu:group:cta:vela:role=member#aai.egi.eu"
    creds = archive_credentials([urn], policy, {urn: "vela-team"})
    assert creds.group == "vela-team"


# --- single sign-on and Dask: the configuration objects --------------------------------------

OIDC_ENV = {
    "CTANB_HUB_AUTH": "oidc",
    "CTANB_OIDC_CLIENT_ID": "ctanb-hub",
    "CTANB_OIDC_CLIENT_SECRET": "s3cret",
    "CTANB_OIDC_AUTHORIZE_URL": "https://login.example.org/oidc/authorize",
    "CTANB_OIDC_TOKEN_URL": "https://login.example.org/oidc/token",
    "CTANB_OIDC_USERDATA_URL": "https://login.example.org/oidc/userinfo",
    "CTANB_OIDC_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
    "CTANB_OIDC_GROUPS_CLAIM": "eduperson_entitlement",
    "CTANB_OIDC_ALLOWED_GROUPS": "vela-team,ctao-consortium",
}


def test_oidc_configures_generic_oauthenticator():
    from oauthenticator.generic import GenericOAuthenticator

    sections = authenticator_config(OIDC_ENV)
    assert sections["JupyterHub"]["authenticator_class"] == "generic-oauth"
    auth = GenericOAuthenticator(config=Config(sections))
    assert auth.client_id == "ctanb-hub"
    assert auth.token_url == "https://login.example.org/oidc/token"
    assert auth.manage_groups is True
    assert auth.auth_state_groups_key == "oauth_user.eduperson_entitlement"
    assert auth.allowed_groups == {"vela-team", "ctao-consortium"}
    assert "openid" in auth.scope


def test_oidc_without_its_settings_names_what_is_missing():
    env = {k: v for k, v in OIDC_ENV.items() if k != "CTANB_OIDC_TOKEN_URL"}
    with pytest.raises(ConfigError, match="CTANB_OIDC_TOKEN_URL"):
        authenticator_config(env)
    with pytest.raises(ConfigError, match="'saml' is not one of"):
        authenticator_config({"CTANB_HUB_AUTH": "saml"})


def test_dask_gateway_client_reads_the_spawner_environment(monkeypatch):
    import dask
    from dask_gateway.auth import JupyterHubAuth, get_auth

    settings = DaskGatewaySettings(address="http://127.0.0.1:8000/services/dask-gateway",
                                   proxy_address="gateway://127.0.0.1:8786")  # fmt: skip
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "user-token")
    dask.config.refresh()
    try:
        # What dask_gateway.Gateway() reads (without connecting).
        assert dask.config.get("gateway.address") == settings.address
        assert dask.config.get("gateway.proxy-address") == "gateway://127.0.0.1:8786"
        auth = get_auth()
        assert isinstance(auth, JupyterHubAuth)
        assert auth.api_token == "user-token"
    finally:
        monkeypatch.undo()
        dask.config.refresh()


# --- Helm values -----------------------------------------------------------------------------


@pytest.mark.parametrize("chart", ["jupyterhub", "dask-gateway"])
def test_helm_values_follow_the_chart_schema(chart):
    values = yaml.safe_load((HELM / f"{chart}-values.yaml").read_text())
    schema = yaml.safe_load((HELM / "schema" / f"{chart}.schema.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    # A misspelt key is an error, as with the chart's own schema.
    bad = json.loads(json.dumps(values))
    bad[next(iter(values))]["extraEnvironment"] = {}
    with pytest.raises(jsonschema.ValidationError, match="extraEnvironment"):
        jsonschema.validate(bad, schema)


def test_helm_values_give_users_the_archive_and_the_gateway():
    hub = yaml.safe_load((HELM / "jupyterhub-values.yaml").read_text())
    gateway = yaml.safe_load((HELM / "dask-gateway-values.yaml").read_text())
    assert hub["hub"]["extraEnv"]["CTANB_TAP_URL"].endswith("/tap")
    assert hub["singleuser"]["extraEnv"]["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert "dask-gateway" in hub["hub"]["services"]
    assert gateway["gateway"]["auth"]["type"] == "jupyterhub"
    # The gateway admits a token only with access to its service: users and their servers.
    for role in ("user", "server"):
        assert "access:services!service=dask-gateway" in hub["hub"]["loadRoles"][role]["scopes"]
    # The hub configuration snippet uses the same pre-spawn hook as deploy/hub.
    assert "make_pre_spawn_hook" in "".join(hub["hub"]["extraConfig"].values())


# --- a real hub --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hub:
    """The REST API of a running hub, as the ``ctanb-admin`` service."""

    def __init__(self, url: str, token: str, state: Path) -> None:
        self.url = url.rstrip("/")
        self.state = state
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.token = token

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.url}/hub/api{path}", timeout=60, **kwargs)

    def add_user(self, name: str, groups: list[str]) -> None:
        assert self.api("POST", f"/users/{name}").status_code in (201, 409)
        for group in groups:
            if self.api("GET", f"/groups/{group}").status_code == 404:
                assert self.api("POST", f"/groups/{group}").status_code == 201
            assert self.api("POST", f"/groups/{group}/users", json={"users": [name]}).ok

    def spawn(self, *names: str, timeout: float = 120) -> list[requests.Response]:
        """Start the servers of *names* together; wait until every one is ready."""
        responses = [self.api("POST", f"/users/{name}/server") for name in names]
        waiting = {n for n, r in zip(names, responses, strict=True) if r.status_code < 400}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                server = self.api("GET", f"/users/{name}").json()["servers"].get("")
                if server and server.get("ready"):
                    waiting.discard(name)
                elif not server or not server.get("pending"):
                    raise AssertionError(f"{name}'s server did not start:\n{self.log_tail()}")
            time.sleep(0.25)
        assert not waiting, f"servers of {waiting} not ready after {timeout} s:\n{self.log_tail()}"
        return responses

    def log_tail(self) -> str:
        return (self.state / "hub.log").read_text()[-3000:]

    def kernel(self, name: str) -> Kernel:
        return Kernel(self, name)


class Kernel:
    """A kernel in a user's server, run over the Jupyter kernel websocket."""

    def __init__(self, hub: Hub, user: str) -> None:
        self.base = f"{hub.url}/user/{user}/api/kernels"
        self.hub = hub
        resp = hub.session.post(self.base, json={"name": "python3"}, timeout=60)
        assert resp.status_code == 201, resp.text
        self.id = resp.json()["id"]
        self.session = uuid.uuid4().hex

    def _channels(self) -> websocket.WebSocket:
        # One websocket per execution: an idle one (while another user's kernel runs the
        # tutorials for minutes) is closed by the server's ping timeout.
        ws_url = self.base.replace("http", "ws", 1) + f"/{self.id}/channels"
        # JupyterHub >= 5 wants the token in a header on websockets too.
        return websocket.create_connection(
            ws_url, header=[f"Authorization: token {self.hub.token}"], timeout=300
        )

    def run(self, code: str) -> str:
        """Execute *code*; its stdout, or AssertionError with the kernel's traceback."""
        self.ws = self._channels()
        try:
            return self._execute(code)
        finally:
            self.ws.close()

    def _execute(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))  # fmt: skip
        out, error, replied, idle = [], None, False, False
        deadline = time.monotonic() + 1800  # a cell may print nothing for minutes
        while not (replied and idle):
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                if time.monotonic() > deadline:
                    raise
                continue
            if isinstance(raw, bytes):
                # Jupyter's binary frames carry widget buffers (a chart's PNG bytes): not
                # the replies, stream output or errors this harness reads.
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif kind == "error":
                error = "\n".join(msg["content"]["traceback"])
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        if error is not None:
            raise AssertionError(f"cell failed:\n{code}\n{error}")
        return "".join(out)

    def close(self) -> None:
        self.hub.session.delete(f"{self.base}/{self.id}", timeout=30)


@contextlib.contextmanager
def _up(tmp_path_factory, *args: str, down: tuple[str, ...] = ()):
    """Run ``deploy/hub/up ARGS`` on random loopback ports; a :class:`Hub`, then ``down``."""
    if shutil.which("npm") is None and not (HUB / "node_modules").is_dir():
        pytest.fail("npm is needed: deploy/hub/up installs configurable-http-proxy with it")
    if os.geteuid() != 0:
        pytest.fail("deploy/hub/up creates the provenance database on PostgreSQL: run as root")
    state = tmp_path_factory.mktemp("hub")
    token = secrets.token_hex(16)
    port = _free_port()
    env = {
        **os.environ,
        "CTANB_HUB_API_TOKEN": token,
        "CTANB_HUB_INTERNAL_PORT": str(_free_port()),
        "CTANB_HUB_PROXY_API_PORT": str(_free_port()),
        "CTANB_DASK_GATEWAY_ADDRESS": "http://127.0.0.1:9/services/dask-gateway",
    }
    env.pop("CTANB_HOME", None)  # each user's server has its own (in its home)
    env.pop("CTANB_PROV_URL", None)  # the hub makes its shared PostgreSQL store
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(HUB / "up"), "--port", str(port), "--state", str(state), *args],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"deploy/hub/up failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    url = proc.stdout.strip().splitlines()[-1]
    assert url == f"http://127.0.0.1:{port}/"
    print(f"deploy/hub/up {' '.join(args)}: {time.monotonic() - started:.1f} s")
    try:
        yield Hub(url, token, state)
    finally:
        subprocess.run(["bash", str(HUB / "down"), "--state", str(state), *down], check=False,
                       capture_output=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory, archive_url):
    """``deploy/hub/up`` against the session's embedded archive; ``down`` afterwards."""
    with _up(tmp_path_factory, "--tap-url", archive_url) as running:
        yield running


@pytest.fixture(scope="module")
def kernels(hub):
    """Servers and kernels of alice (vela-team) and bob (pks2155-team)."""
    hub.add_user("alice", ["vela-team"])
    hub.add_user("bob", ["pks2155-team", "students"])
    opened = {}
    try:
        started = time.monotonic()
        hub.spawn("alice", "bob")
        for name in ("alice", "bob"):
            opened[name] = hub.kernel(name)
        print(f"spawn of 2 servers + kernels: {time.monotonic() - started:.1f} s")
        yield opened
    finally:
        for kernel in opened.values():
            kernel.close()


DOWNLOAD = """
import json, os, ctanb
from ctanb.archive.simulate import SIMULATED_RUNS
archive = ctanb.connect(progress=False)
outcome = {}
for proposal in ("CTAO-2026A-001", "CTAO-2026A-002"):
    run = next(r for r in SIMULATED_RUNS if r.proposal_id == proposal)
    results = archive.search(collection="CTAO-SIM", obs_id=str(run.obs_id))
    assert results[0].data_rights == "proprietary"
    try:
        outcome[proposal] = f"{len(archive.download(results))} file"
    except ctanb.AuthError as exc:
        outcome[proposal] = f"AuthError: {exc}"
print(json.dumps({"group": os.environ.get("CTANB_ARCHIVE_GROUP"), "outcome": outcome,
                  "tap": os.environ["CTANB_TAP_URL"], "prov": os.environ["CTANB_PROV_URL"]}))
"""


def test_spawned_servers_see_exactly_their_groups_proprietary_data(hub, kernels, archive_url):
    alice = json.loads(kernels["alice"].run(DOWNLOAD))
    bob = json.loads(kernels["bob"].run(DOWNLOAD))
    assert alice["tap"] == bob["tap"] == archive_url
    assert alice["prov"].startswith("postgresql+psycopg://")
    assert alice["group"] == "vela-team" and bob["group"] == "pks2155-team"
    assert alice["outcome"]["CTAO-2026A-001"] == "1 file"
    assert alice["outcome"]["CTAO-2026A-002"].startswith("AuthError")
    assert bob["outcome"]["CTAO-2026A-002"] == "1 file"
    assert bob["outcome"]["CTAO-2026A-001"].startswith("AuthError: ")
    assert "2028-03-31" in bob["outcome"]["CTAO-2026A-001"]


def test_users_share_the_provenance_store(kernels):
    activity = (
        kernels["alice"]
        .run(
            "from ctanb.provenance import Activity\n"
            "with Activity('hub-shared-store', version='1') as act:\n"
            "    act.parameter('n', 1)\n"
            "print(act.id)"
        )
        .strip()
    )
    seen = kernels["bob"].run(
        "from ctanb.provenance.store import default_store\n"
        "import time\n"
        "from ctanb import ProvenanceError\n"
        # alice's kernel commits behind her step: visible to others a few ms later
        "deadline = time.monotonic() + 30\n"
        "while True:\n"
        "    try:\n"
        f"        record = default_store().get_activity({activity!r})\n"
        "        break\n"
        "    except ProvenanceError:\n"
        "        if time.monotonic() > deadline:\n"
        "            raise\n"
        "        time.sleep(0.1)\n"
        "print(record.name)"
    )
    assert seen.strip() == "hub-shared-store"


def test_dask_gateway_settings_reach_the_kernel(kernels):
    out = kernels["bob"].run(
        "import dask\nfrom dask_gateway.auth import get_auth\n"
        "print(dask.config.get('gateway.address'), type(get_auth()).__name__)"
    )
    assert out.split() == ["http://127.0.0.1:9/services/dask-gateway", "JupyterHubAuth"]


def test_a_user_of_two_unrelated_teams_is_not_spawned(hub):
    hub.add_user("carol", ["vela-team", "mrk421-team"])
    (resp,) = hub.spawn("carol")
    assert resp.status_code >= 400
    assert "add a group to the policy" in hub.log_tail()


# --- the same hub next to DaCHS ------------------------------------------------------------

DACHS_CHECK = """
import os, ctanb
from ctanb.archive.simulate import SIMULATED_RUNS
run = next(r for r in SIMULATED_RUNS if r.proposal_id == "CTAO-2026A-001")
archive = ctanb.connect(progress=False)
results = archive.search(collection="CTAO-SIM", obs_id=str(run.obs_id))
try:
    outcome = f"{len(archive.download(results))}-file"
except ctanb.AuthError:
    outcome = "AuthError"
print(os.environ["CTANB_TAP_URL"], outcome)
"""


@pytest.fixture(scope="module")
def dachs_kernels(tmp_path_factory, archive_db):
    """``deploy/hub/up`` without --tap-url: DaCHS serves the session's archive (the same
    one tests/test_dachs.py publishes); kernels of alice (vela-team) and bob (pks2155-team)."""
    if os.geteuid() != 0:
        pytest.fail("deploy/dachs/up needs root")
    with _up(tmp_path_factory, "--archive-db", str(archive_db), down=("--dachs",)) as hub:
        hub.add_user("alice", ["vela-team"])
        hub.add_user("bob", ["pks2155-team"])
        hub.spawn("alice", "bob")
        opened = {}
        try:
            for name in ("alice", "bob"):
                opened[name] = hub.kernel(name)
            yield opened
        finally:
            for kernel in opened.values():
                kernel.close()


def test_one_command_brings_up_dachs_and_the_hub(dachs_kernels):
    """DaCHS opens a Vela file to the vela-team user's credentials only."""
    tap = f"http://127.0.0.1:{os.environ.get('DACHS_PORT', '8080')}/tap"
    # Through the client: the credential reaches DaCHS as HTTP Basic.
    assert dachs_kernels["alice"].run(DACHS_CHECK).split() == [tap, "1-file"]
    assert dachs_kernels["bob"].run(DACHS_CHECK).split() == [tap, "AuthError"]


def test_tutorial_notebooks_run_against_dachs_in_a_spawned_server(dachs_kernels):
    """Every tutorial, cell by cell, in alice's server against DaCHS (tests/test_notebooks.py
    runs them against the embedded archive). No cell is left out: the coverage cells of
    tutorial 02 read DaCHS's coverage service (issue 18)."""
    kernel = dachs_kernels["alice"]
    # The server's working directory is the user's home, with the tutorials copied in.
    assert kernel.run("import os; print(sorted(os.listdir('notebooks')))").strip() != "[]"
    started = time.monotonic()
    ran = 0
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        this = time.monotonic()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            # Every cell runs; the tag that used to leave the coverage cells out is gone.
            tags = cell.metadata.get("tags", [])
            assert "embedded-archive-only" not in tags, f"{path.name}: {cell.source[:60]!r}"
            kernel.run(cell.source)
            ran += 1
        print(f"{path.name} in alice's server against DaCHS: {time.monotonic() - this:.1f} s")
    print(f"all tutorials against DaCHS: {ran} cells in {time.monotonic() - started:.1f} s")
