"""Start and stop the real SAMP applications (TOPCAT, Aladin, JSAMP hub) for the tests,
and make the small test data (4 H.E.S.S. Crab runs, a Crab count map).

Every application runs in its own process group under ``xvfb-run`` and is stopped
with :func:`os.killpg` in a ``finally``, even when a test fails. A missing
program is an error naming the Debian package, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from conftest import wait_for

#: The Debian packages the SAMP tests need (program -> package).
DEBIAN_PACKAGES = {
    "topcat": "topcat",
    "xvfb-run": "xvfb",
    "java": "default-jre (pulled in by topcat)",
    "chromium": "chromium",
}
ALADIN_JAR = Path("/usr/share/java/aladin.jar")
JSAMP_JAR = Path("/usr/share/java/jsamp.jar")
CRAB_RUNS = (23523, 23526, 23559, 23592)


def require_program(name: str) -> str:
    """The path of *name*, or an AssertionError saying which package to install."""
    path = shutil.which(name)
    assert path, f"{name} not found: apt-get install -y {DEBIAN_PACKAGES.get(name, name)}"
    return path


class AppProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None, **kw):
        self.argv = argv
        self.log = log
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )

    def output(self) -> str:
        """What the program printed so far."""
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the whole process group (xvfb-run, Xvfb, java), politely then firmly."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # xvfb-run's Xvfb may outlive the group leader for a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log_file.close()


@contextlib.contextmanager
def running(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[AppProcess]:
    """Run *argv* for the duration of the block; always stopped afterwards."""
    app = AppProcess(argv, log, env)
    try:
        yield app
    finally:
        app.stop()


def samp_env(lockfile: Path) -> dict[str, str]:
    """The environment telling a SAMP application to use the hub of *lockfile*."""
    return dict(os.environ, SAMP_HUB=f"std-lockurl:file://{lockfile}")


def topcat_argv() -> list[str]:
    """TOPCAT, headless under Xvfb, joining an existing hub."""
    require_program("xvfb-run")
    return [require_program("xvfb-run"), "-a", require_program("topcat"), "-samp", "-nohub"]


def jsamp_hub_argv(web_auth: str = "true", url_control: bool = False) -> list[str]:
    """TOPCAT's JSAMP hub with the Standard and Web Profiles, no GUI."""
    return [
        require_program("topcat"),
        "-jsamp",
        "hub",
        "-mode",
        "no-gui",
        "-profiles",
        "std,web",
        "-web:auth",
        web_auth,
        # JSAMP blocks web clients from sending URLs of local servers; the tests'
        # stand-in for a remote Jupyter server has to be on 127.0.0.1.
        "-web:urlcontrol" if url_control else "-web:nourlcontrol",
    ]


#: A GLU dictionary for an Aladin that runs with its network code on but without internet.
#:
#: Aladin started with ``-local`` cannot load ``http:`` URLs at all: it resolves them
#: through the GLU record "Http", and its GLU resolver returns nothing when the network
#: is off, so it only probes ``<url>/properties`` (a HiPS) and answers "Data format
#: not recognized". Without ``-local`` and without internet, its start-up fails
#: (the remote GLU dictionary holding "Http" and the data servers is unreachable, and
#: the server window crashes with no visible server; Aladin then never answers
#: scripts). This dictionary supplies both: "Http" passes URLs through unchanged, and
#: one placeholder image server (never queried) lets the server window build.
ALADIN_OFFLINE_GLU = """\
%A Http
%D Plain HTTP access (URL passed through unchanged)
%O ctanb
%U $1

%ActionName        ctanbOffline
%Description       Placeholder image server of an Aladin without internet (never queried)
%Aladin.Label      Offline
%DistribDomain     ALADIN
%Owner             ctanb
%Url               http://127.0.0.1:9/?ra=$1&dec=$2
%Param.Description $1=Right Ascension
%Param.Description $2=Declination
%Param.DataType    $1=Target(RA)
%Param.DataType    $2=Target(DE)
%ResultDataType    Mime(image/fits)
"""

#: Java options sending Aladin's outward HTTP(S) to a closed loopback port, so every
#: request to the internet fails at once (no DNS wait, no connect timeout) while
#: 127.0.0.1 stays direct (Java's default ``http.nonProxyHosts``).
ALADIN_NO_INTERNET = [
    "-Dhttp.proxyHost=127.0.0.1",
    "-Dhttp.proxyPort=9",
    "-Dhttps.proxyHost=127.0.0.1",
    "-Dhttps.proxyPort=9",
]


def aladin_argv(home: Path, *, http: bool = False) -> list[str]:
    """Aladin Desktop under Xvfb; it reads ``<home>/.samp`` whatever SAMP_HUB says.

    With ``http=False`` it runs with ``-local`` (loads ``file:`` URLs only). With
    ``http=True`` its network code stays on, so it loads ``http:`` URLs too, with
    :data:`ALADIN_OFFLINE_GLU` (written into *home*) instead of CDS's dictionary and
    every non-loopback request failing fast (:data:`ALADIN_NO_INTERNET`).
    """
    assert ALADIN_JAR.is_file(), f"{ALADIN_JAR} missing: apt-get install -y aladin"
    java = [require_program("xvfb-run"), "-a", require_program("java"), f"-Duser.home={home}"]
    options = ["-noreleasetest", "-nolog", "-noplugin"]
    if http:
        glu = Path(home) / "ctanb-offline.dic"
        glu.write_text(ALADIN_OFFLINE_GLU)
        java += ALADIN_NO_INTERNET
        options += [f"-glufile={glu}"]
    else:
        options.insert(0, "-local")
    return [*java, "-Xmx512m", "-jar", str(ALADIN_JAR), *options]


def aladin_home(folder: Path, lockfile: Path) -> Path:
    """A home folder for Aladin whose ``.samp`` is the test hub's lockfile."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / ".samp"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(lockfile)
    return folder


# --- test data --------------------------------------------------------------------------------
def crab_runs_table(data_dir: Path):
    """Four H.E.S.S. DR1 Crab runs with obs_id, s_ra, s_dec, t_min (units, UCDs, descriptions)."""
    from astropy.table import Table
    from astropy.time import Time

    index = Table.read(data_dir / "hess-dl3-dr1" / "obs-index.fits.gz")
    rows = index[np.isin(index["OBS_ID"], CRAB_RUNS)]
    assert len(rows) == len(CRAB_RUNS), "the Crab runs are missing from the H.E.S.S. index"
    t_min = Time(
        [f"{d}T{t}" for d, t in zip(rows["DATE-OBS"], rows["TIME-OBS"], strict=True)],
        scale="utc",
    ).mjd
    table = Table(meta={"name": "hess_crab_runs"})
    columns = [
        ("obs_id", np.asarray(rows["OBS_ID"], dtype=np.int64), None, "meta.id;obs", "Run number"),
        ("s_ra", np.asarray(rows["RA_PNT"], float), "deg", "pos.eq.ra", "Pointing RA (ICRS)"),
        ("s_dec", np.asarray(rows["DEC_PNT"], float), "deg", "pos.eq.dec", "Pointing Dec"),
        ("t_min", t_min, "d", "time.start;obs.exposure", "Run start (MJD, UTC)"),
    ]
    for name, values, unit, ucd, description in columns:
        table[name] = values
        table[name].unit = unit
        table[name].description = description
        table[name].meta["ucd"] = ucd
    return table


def crab_count_map(data_dir: Path, path: Path) -> Path:
    """A 100x100 counts image (0.02 deg pixels, TAN) of run 23523's events around the Crab.

    Binned with numpy and an astropy WCS rather than gammapy, to keep the tests fast.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    events_file = data_dir / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    events = fits.getdata(events_file, "EVENTS")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [83.633, 22.014]
    wcs.wcs.crpix = [50.5, 50.5]
    wcs.wcs.cdelt = [-0.02, 0.02]
    wcs.wcs.cunit = ["deg", "deg"]
    x, y = wcs.world_to_pixel_values(events["RA"], events["DEC"])
    counts, _, _ = np.histogram2d(y, x, bins=100, range=[[-0.5, 99.5], [-0.5, 99.5]])
    hdu = fits.PrimaryHDU(data=counts.astype("float32"), header=wcs.to_header())
    hdu.header["OBJECT"] = "Crab counts, H.E.S.S. run 23523"
    hdu.header["BUNIT"] = "count"
    hdu.writeto(path, overwrite=True)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(
    folder: Path, ctanb_home: Path, app: str = "jupyter_server"
) -> Iterator[tuple[str, str]]:
    """A real Jupyter server (or ``app="jupyterlab"``) with the ctanb.samp.jupyter extension.

    Yields ``(url, token)``.
    """
    import sys

    import httpx

    port, token = free_port(), "ctanb-test-token"
    argv = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        "--allow-root",  # CI and this workplace run as root
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={folder}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.jpserver_extensions={'ctanb.samp.jupyter': True}",
    ]
    if app == "jupyterlab":  # nothing may reach out: no news, update or extension checks
        argv += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
    env = dict(
        os.environ,
        CTANB_HOME=str(ctanb_home),
        JUPYTER_CONFIG_DIR=str(folder / "config"),
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
    )
    url = f"http://127.0.0.1:{port}/"
    with running(argv, folder / "jupyter.log", env) as app:

        def up():
            try:
                return httpx.get(url + "api/status", params={"token": token}).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(up, 60, "the Jupyter server")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{app.output()[-3000:]}") from None
        assert "ctanb: serving SAMP spool" in app.output(), app.output()[-3000:]
        yield url, token
