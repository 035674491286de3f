"""Provenance a user can trust, tried as an attacker would: crafted records, edited
products, forged records, mailed copies, redo by another user with an empty home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from ctanb import ProvenanceError
from ctanb.provenance import ProvenanceStore, redo, verify

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import provenance_steps  # noqa: E402

RUN = 23523


@pytest.fixture(scope="module")
def store_url(prov_store_url: str) -> str:
    return prov_store_url


@pytest.fixture(scope="module")
def product(tmp_path_factory, store_url, data_dir) -> Path:
    """A real, signed counts map of one Crab run, recorded in the module's store."""
    run = data_dir / "hess-dl3-dr1" / "data" / f"hess_dl3_dr1_obs_id_{RUN:06d}.fits.gz"
    out = tmp_path_factory.mktemp("trust") / "crab_counts.fits"
    provenance_steps.CountsMapStep().run([str(run)], str(out))
    ProvenanceStore(store_url).flush()
    return out


def _copy(product: Path, tmp_path: Path, name: str = "copy.fits") -> Path:
    target = tmp_path / name
    shutil.copy(product, target)
    return target


def _record(path: Path) -> dict:
    with fits.open(path) as hdus:
        return json.loads(hdus["PROVENANCE"].data["PROV_JSON"][0])


def _rewrite_record(path: Path, document: dict, *, keep_signature: bool = True) -> None:
    """Replace the PROVENANCE document (as an attacker with astropy would)."""
    text = json.dumps(document).encode()
    with fits.open(path, mode="update") as hdus:
        old = hdus["PROVENANCE"].header
        column = fits.Column(name="PROV_JSON", format=f"{len(text)}A", array=[text])
        new = fits.BinTableHDU.from_columns([column], name="PROVENANCE")
        for key in ("SIGALG", "SIGKEY", "SIGVAL1", "SIGVAL2", "SIGNER") if keep_signature else ():
            new.header[key] = old[key]
        hdus[hdus.index_of("PROVENANCE")] = new


def test_the_untouched_product_verifies(product, store_url):
    report = verify(product, store=ProvenanceStore(store_url))
    assert report.ok, str(report)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda h: h[0].data.__setitem__((0, 5, 5), h[0].data[0, 5, 5] + 1), "PRIMARY data"),
        (lambda h: h[0].header.__setitem__("CRVAL1", h[0].header["CRVAL1"] + 5), "PRIMARY header"),
        (lambda h: h[1].header.__setitem__("TUNIT3", "GeV"), "PRIMARY_BANDS header"),
        (lambda h: h[0].header.__setitem__("BUNIT", "1000"), "PRIMARY header"),
    ],
    ids=["data", "wcs", "energy-unit", "unit"],
)
def test_an_edit_anywhere_fails_verify(product, tmp_path, edit, expected):
    altered = _copy(product, tmp_path)
    with fits.open(altered, mode="update") as hdus:
        edit(hdus)
    report = verify(altered)
    assert not report.ok
    assert any(expected in p for p in report.problems), str(report)


def test_copies_that_only_recompute_checksums_still_verify(product, tmp_path):
    copy = _copy(product, tmp_path)
    with fits.open(copy, mode="update", checksum=True):
        pass  # astropy adds CHECKSUM/DATASUM cards on write: a copy, not an edit
    assert "CHECKSUM" in fits.getheader(copy)
    assert verify(copy).ok, str(verify(copy))


def test_an_edited_record_fails_verify(product, tmp_path):
    edited = _copy(product, tmp_path)
    document = _record(edited)
    for record in document["activity"].values():
        record["prov:label"] = record["prov:label"]  # same activity, ...
    for record in document["entity"].values():
        if record.get("voprov:name") == "binsz_deg" or "ctanb:encoded" in record:
            record["voprov:value"] = "0.5"  # ... a parameter changed
    _rewrite_record(edited, document)
    report = verify(edited)
    assert not report.ok
    assert any("provenance record altered" in p for p in report.problems), str(report)


def test_a_forged_record_matching_altered_data_is_caught(product, tmp_path, store_url):
    """Data changed and the recorded hash rewritten to match, the signature removed:
    unsigned, and the store still knows the real hash."""
    from ctanb.provenance._hashing import fits_product_sha256

    forged = _copy(product, tmp_path)
    with fits.open(forged, mode="update") as hdus:
        hdus[0].data[0, 5, 5] += 3
    digest = fits_product_sha256(forged)
    document = _record(forged)
    entity_id = fits.getheader(forged)["PROV_ID"]
    document["entity"][entity_id]["ctanb:data_sha256"] = digest.sha256
    document["entity"][entity_id]["ctanb:hdus"] = json.dumps([list(p) for p in digest.hdus])
    _rewrite_record(forged, document, keep_signature=False)
    alone = verify(forged)
    assert not alone.ok and any("not signed" in p for p in alone.problems), str(alone)
    with_store = verify(forged, store=ProvenanceStore(store_url))
    assert any("provenance record forged" in p for p in with_store.problems), str(with_store)


def _ctanb(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    script = "import sys, provenance_steps; from ctanb.cli import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CTANB_HOME": str(home), "PYTHONPATH": str(TESTS), **env},
        timeout=300,
        check=False,
    )


def test_a_mailed_copy_verifies_once_the_makers_key_is_trusted(product, tmp_path):
    colleague = tmp_path / "colleague-home"
    mailed = _copy(product, tmp_path, "mailed.fits")
    first = _ctanb("prov", "verify", str(mailed), home=colleague)
    assert first.returncode == 1 and "which you do not trust" in first.stdout, first.stdout
    assert "Traceback" not in first.stderr
    maker_key = _ctanb("prov", "key", home=Path(os.environ["CTANB_HOME"])).stdout.strip()
    trusted = _ctanb("prov", "trust", maker_key, "--name", "maker", home=colleague)
    assert trusted.returncode == 0, trusted.stderr
    second = _ctanb("prov", "verify", str(mailed), home=colleague)
    assert second.returncode == 0 and "OK" in second.stdout, second.stdout + second.stderr


def test_a_crafted_record_never_imports_code(product, tmp_path):
    """The record names a step kind that is a module path, and a configuration class in
    a module that would leave a mark if imported: refused before any import."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef run(**kw):\n    pass\n"
    )
    crafted = _copy(product, tmp_path, "crafted.fits")
    document = _record(crafted)
    for record in document["activity"].values():
        record["prov:label"] = "evil_module:run"
    for record in document["entity"].values():
        if "ConfigFile" in str(record.get("prov:type")):
            record["ctanb:encoded"] = json.dumps({"__model__": ["evil_module:Evil", {}]})
    _rewrite_record(crafted, document)
    env = {"PYTHONPATH": f"{TESTS}{os.pathsep}{tmp_path}"}
    result = _ctanb(
        "prov", "redo", str(crafted), "--out", str(tmp_path / "out"), home=tmp_path / "h", **env
    )
    assert result.returncode == 1
    assert "'evil_module:run' is not a ctanb step" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()
    # a known kind with a crafted configuration class: the class is never imported either
    document = _record(crafted)
    for record in document["activity"].values():
        record["prov:label"] = "counts-map"
    _rewrite_record(crafted, document)
    sys.path.insert(0, str(tmp_path))
    try:
        report = redo(crafted, tmp_path / "out2")
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists() and "evil_module" not in sys.modules
    assert report.rerun == ["counts-map 1.0"]


def test_an_unknown_step_version_is_named(product, tmp_path):
    crafted = _copy(product, tmp_path, "future.fits")
    document = _record(crafted)
    for record in document["activity"].values():
        record["ctanb:version"] = "9.9"
    _rewrite_record(crafted, document)
    with pytest.raises(ProvenanceError, match=r"version '9\.9' is unknown to this ctanb"):
        redo(crafted, tmp_path / "out")


@pytest.mark.parametrize("damage", ["truncated", "no-provenance", "not-fits"])
def test_bad_products_give_one_line(product, tmp_path, damage, hess_run=RUN):
    bad = _copy(product, tmp_path, "bad.fits")
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size - 4000])
    elif damage == "no-provenance":
        with fits.open(bad, mode="update") as hdus:
            del hdus["PROVENANCE"]
    else:
        bad.write_text("SIMPLE = this is not FITS")
    for command in ("verify", "redo", "show"):
        args = ["prov", command, str(bad)] + (
            ["--out", str(tmp_path / "o")] if command == "redo" else []
        )
        result = _ctanb(*args, home=tmp_path / "h")
        assert result.returncode == 1, (command, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ctanb: error:"), (command, result.stderr)
        assert "Traceback" not in result.stderr


def test_redo_by_another_user_with_an_empty_home_fetches_inputs_from_the_archive(
    archive_url, tmp_path, monkeypatch
):
    """Made from archive downloads; redone with an empty CTANB_HOME and no data folder:
    the inputs come from the archive by publisher DID, checked by sha256."""
    import ctanb

    archive = ctanb.connect(archive_url)
    crab = archive.query(
        f"SELECT * FROM ivoa.obscore WHERE obs_id = '{RUN}' AND obs_collection = 'HESS-DL3-DR1'"
    )
    (event_file,) = archive.download(crab)
    made = tmp_path / "made" / "counts.fits"
    made.parent.mkdir()
    provenance_steps.CountsMapStep().run([str(event_file)], str(made))
    shutil.rmtree(Path(os.environ["CTANB_HOME"]) / "cache")  # the maker's downloads are gone
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CTANB_HOME", str(tmp_path / "other-user"))
    monkeypatch.setenv("CTANB_DATA", str(empty))
    report = redo(made, tmp_path / "redo", archive=archive_url)
    assert report.identical, str(report)
    assert set(report.input_sources.values()) == {"archive"}, report.input_sources
    new = fits.getheader(report.new_product)
    assert new["PROV_ID"] != fits.getheader(made)["PROV_ID"]
    redone = _record(Path(report.new_product))
    revision = [
        d
        for d in redone.get("wasDerivedFrom", {}).values()
        if d.get("prov:usedEntity") == fits.getheader(made)["PROV_ID"]
    ]
    assert revision, "the redone product names the product it revises"


def _installed(module) -> bool:
    """A module of the Python installation, its packages or ctanb (not a stray file)."""
    where = getattr(module, "__file__", None)
    roots = (sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parent.parent / "ctanb"))
    return where is None or str(Path(where).resolve()).startswith(roots)


def test_any_mutation_of_a_record_imports_nothing_and_fails_in_words(product, tmp_path_factory):
    """Property: whatever a record says (random edits of its strings, numbers and
    structure), verify and redo end with a ProvenanceError or a report, never another
    exception, and import no module from outside the installation (a crafted record
    cannot name code: kinds come from ctanb's registry)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = _record(product)
    hostile = st.sampled_from(
        ["os:system", "subprocess:run", "evil_module:run", "builtins:eval", "", "counts-map",
         "smooth-counts", "9.9", "1.0", "{\"__model__\": [\"os:system\", {}]}", "\u0000", "😀"]
    )  # fmt: skip
    value = st.one_of(hostile, st.text(max_size=20), st.integers(), st.none(), st.booleans())

    def paths(doc, prefix=()):
        if isinstance(doc, dict):
            for key, item in doc.items():
                yield (*prefix, key)
                yield from paths(item, (*prefix, key))

    all_paths = list(paths(base))
    folder = tmp_path_factory.mktemp("mutants")
    before = set(sys.modules)

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.tuples(st.sampled_from(all_paths), value), min_size=1, max_size=4))
    def check(edits):
        document = json.loads(json.dumps(base))
        for path, new in edits:
            target = document
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target[path[-1]] = new
        mutant = folder / "mutant.fits"
        shutil.copy(product, mutant)
        _rewrite_record(mutant, document)
        for action in (lambda: verify(mutant), lambda: redo(mutant, folder / "redo")):
            try:
                action()
            except ProvenanceError as exc:
                assert "Traceback" not in str(exc)
        strays = [m for m in set(sys.modules) - before if not _installed(sys.modules[m])]
        assert not strays, strays

    check()
