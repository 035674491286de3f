"""Fresh-eyes trial 5, command-line side: bad arguments and crafted files get one clear
message in the user's words ("ctanb: error: ..."), never a traceback or parser internals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctanb._errors import ConfigError
from ctanb.analysis.workflow import AnalysisConfig
from ctanb.cli import main

INTERNALS = ("Traceback", "Input should", "<unicode string>", "sequence element", "codec",
             "pydantic", "Error: ", "constructor", "instance of", "parsing angle")  # fmt: skip


def ctanb(args: list[str], capsys) -> tuple[int, str]:
    """Run ``ctanb ARGS`` in this process: (exit status, everything printed)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_plain_error(code: int, text: str, *needles: str) -> None:
    assert code != 0, text
    assert "ctanb: error: " in text, text
    for bad in INTERNALS:
        assert bad not in text, f"{bad!r} in {text!r}"
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"


# --- finding 5, 12, 13: values refused before anything starts ------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["archive", "serve", "--db", "X.db", "--port", "70000"], ["--port", "70000", "65535"]),
        (["archive", "serve", "--db", "X.db", "--port", "-1"], ["--port", "-1"]),
        (["archive", "simulate", "--out", "sim", "--seed", "-1"], ["--seed", "-1"]),
        (["run", "CONFIG", "--out", "o", "--dask", "0"], ["--dask", "0"]),
        (["run", "CONFIG", "--out", "o", "--dask", "-3"], ["--dask", "-3"]),
        (["prov", "query", "--limit", "-1"], ["--limit", "-1"]),
        (["prov", "query", "--depth", "banana", "--id", "foo"], ["--depth", "'banana'"]),
    ],
)
def test_out_of_range_values_are_refused_naming_the_option(tmp_path, capsys, args, needles):
    os.chdir(tmp_path)
    code, text = ctanb(args, capsys)
    assert_plain_error(code, text, *needles)
    assert "not -1" not in " ".join(args) or "-1" in text
    assert not (tmp_path / "sim").exists() and not (tmp_path / "o").exists()


def test_depth_message_echoes_what_was_typed(tmp_path, capsys):
    code, text = ctanb(["prov", "query", "--depth", "banana", "--id", "foo"], capsys)
    assert_plain_error(code, text, "banana")
    assert "-1" not in text


def test_a_file_that_is_not_a_database_is_refused_up_front(tmp_path, capsys):
    notdb = tmp_path / "passwd"
    notdb.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for args in (
        ["archive", "serve", "--db", str(notdb), "--port", "0"],
        ["archive", "ingest", str(tmp_path), "--db", str(notdb)],
        ["archive", "build", "--db", str(notdb), "--no-sim"],
    ):
        code, text = ctanb(args, capsys)
        assert_plain_error(code, text, str(notdb), "not an archive database")
    assert notdb.read_text() == "root:x:0:0:root:/root:/bin/bash\n"  # nothing lost


def test_prov_graph_refuses_a_format_it_does_not_write(tmp_path, capsys):
    code, text = ctanb(["prov", "graph", "x.fits", "-o", str(tmp_path / "p.png")], capsys)
    assert_plain_error(code, text, "p.png", ".svg")
    assert not (tmp_path / "p.png").exists()


def test_every_error_has_one_prefix(tmp_path, capsys):
    # a click usage error, a ClickException of a command and a CtanbError read the same
    for args in (
        ["archive", "serve"],
        ["archive", "serve", "--db", str(tmp_path / "none.db")],
        ["prov", "show", str(tmp_path / "none.fits")],
        ["nosuchcommand"],
    ):
        code, text = ctanb(args, capsys)
        assert_plain_error(code, text)


def test_publish_curation_not_json_or_not_an_object_one_message(tmp_path, capsys):
    product = tmp_path / "p.fits"
    product.write_bytes(b"x")
    texts = []
    for curation in ("{title:", "[1, 2]", '"title"'):
        code, text = ctanb(
            ["archive", "publish", str(product), "--archive", "http://127.0.0.1:9/tap",
             "--curation", curation], capsys,
        )  # fmt: skip
        assert_plain_error(code, text, "--curation must be a JSON object")
        texts.append(text)
    assert len(set(texts)) == 1


# --- finding 1: serve --port 0 records its URL; the record goes when the server stops --


def test_serve_port_0_records_the_url_it_listens_on(tmp_path, archive_db):
    home = tmp_path / "home"
    env = {**os.environ, "CTANB_HOME": str(home)}
    cmd = [sys.executable, "-m", "ctanb", "archive", "serve", "--db", str(archive_db),
           "--port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    announce = home / "archive.json"
    try:
        deadline = time.monotonic() + 60
        while not announce.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert announce.is_file(), proc.stdout.read().decode() if proc.poll() is not None else ""
        url = json.loads(announce.read_text())["url"]
        assert not url.endswith(":0")
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{url}/availability", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200
        # what a notebook does: ctanb.connect() finds this archive
        found = subprocess.run(
            [sys.executable, "-c", "import ctanb; print(ctanb.connect().url)"],
            env={k: v for k, v in env.items() if k != "CTANB_TAP_URL"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert url in found.stdout, found.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert not announce.exists(), "a stopped archive is still announced"


def test_serve_a_port_in_use_is_named(tmp_path, archive_db, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, text = ctanb(
            ["archive", "serve", "--db", str(archive_db), "--port", str(port)], capsys
        )
    assert_plain_error(code, text, f"port {port} is in use")


# --- finding 6: `ctanb run` with crafted YAML --------------------------------------------

YAML_CASES = {
    "top-level list": ("- 1\n- 2\n", "not a list"),
    "python tag": (
        "name: evil\nobservations: !!python/object/apply:os.system ['touch PWNED']\n",
        "!!python/object/apply:os.system is not allowed",
    ),
    "bad indentation": (
        "name: x\nobservations:\n  archive:\n   url: null\n    criteria: {target: Crab}\n",
        "line 5",
    ),
    "nan": (
        "name: x\nobservations: {archive: {criteria: {target: Crab}}}\n"
        "spectrum: {ra_deg: .nan, dec_deg: 22}\n",
        "spectrum.ra_deg: nan is not a finite",
    ),
    "datastore as a path": (
        "name: x\nobservations:\n  datastore: /etc\nspectrum: {ra_deg: 83.6, dec_deg: 22}\n",
        "observations.datastore: should be a section of settings",
    ),
    "angle in TeV": (
        "name: x\nobservations: {archive: {criteria: {target: Crab}}}\nmaps:\n  geom:\n"
        "    wcs: {skydir: {frame: icrs, lon: 83.6 deg, lat: 22 deg}, binsize: 0.02 TeV}\n",
        "'0.02 TeV' is not an angle",
    ),
    "duplicate key": (
        "name: x\nname: y\nobservations: {archive: {criteria: {target: Crab}}}\n",
        "'name' is given twice",
    ),
    "duplicate nested key": (
        "observations: {archive: {criteria: {target: Crab}}}\n"
        "spectrum:\n  ra_deg: 83.6\n  dec_deg: 22\n  ra_deg: 84\n",
        "'ra_deg' is given twice",
    ),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_crafted_yaml_is_refused_in_plain_words(tmp_path, capsys, case):
    text, needle = YAML_CASES[case]
    config = tmp_path / "c.yaml"
    config.write_text(text)
    code, out = ctanb(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert_plain_error(code, out, needle, str(config))
    assert not (tmp_path / "PWNED").exists()


def test_binary_config_is_refused(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"\x00\xff\xfe garbage")
    code, out = ctanb(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert_plain_error(code, out, "not a text (YAML) file")


def test_a_config_without_a_step_is_refused(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("name: x\nobservations: {archive: {criteria: {target: Crab}}}\n")
    code, out = ctanb(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert_plain_error(code, out, "no analysis step", "spectrum")
    assert "0 product" not in out


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from([".nan", ".inf", "-.inf", "!!python/name:os.system", "&a x", "*a",
                     "!!binary AAAA", "2004-01-01", "83.6 deg", "0.02 TeV", "~", "{", "[", ": :"]),
)  # fmt: skip
_keys = st.sampled_from(["name", "observations", "archive", "datastore", "criteria", "target",
                         "maps", "spectrum", "ra_deg", "dec_deg", "geom", "wcs", "binsize",
                         "energy_min_tev", "light_curve", "parallel", "path", "obs_ids", "zz"])  # fmt: skip


class _Pairs(list):
    """Key/value pairs rendered as a YAML mapping (keys may repeat, as in a hasty edit)."""


def _render(value, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(value, _Pairs):
        return "".join(
            f"{pad}{k}:\n{_render(v, indent + 2)}" if isinstance(v, list) and v
            else f"{pad}{k}: {_render(v).strip()}\n"
            for k, v in value
        )  # fmt: skip
    if isinstance(value, list):
        return "".join(f"{pad}- {_render(v).strip()}\n" for v in value) or f"{pad}[]\n"
    return f"{pad}{value}\n"


_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(st.tuples(_keys, inner), max_size=4)
    ).map(lambda items: _Pairs(items) if items and isinstance(items[0], tuple) else items),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=st.one_of(_trees.map(_render), st.text(max_size=80), st.binary(max_size=40)))
def test_any_yaml_text_reads_or_fails_with_a_config_error(tmp_path, doc):
    """Every crafted YAML text is a configuration or one ConfigError in plain words."""
    config = tmp_path / "h.yaml"
    if isinstance(doc, bytes):
        config.write_bytes(doc)
    else:
        config.write_text(doc, encoding="utf-8")
    try:
        AnalysisConfig.read(config)
    except ConfigError as exc:
        message = str(exc)
        for bad in INTERNALS:
            assert bad not in message, message
        assert str(config) in message


def test_examples_still_read():
    """The packaged examples pass the stricter loader (no false alarm)."""
    from ctanb.analysis import examples

    names = [p for p in Path(examples.__file__).parent.glob("*.yaml")]
    assert names
    for path in names:
        AnalysisConfig.read(path)
