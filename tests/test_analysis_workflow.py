"""Whole analyses from YAML: strict configuration, ``ctanb run`` from the archive to DL4
products, and ``ctanb prov redo`` of those products (real subprocesses, real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_analysis_maps import MSH_CONFIG

from ctanb import AnalysisError, ConfigError
from ctanb.analysis import EXAMPLES, AnalysisConfig, Workflow
from ctanb.analysis.workflow import STEPS
from ctanb.provenance import TOLERANCES, compare_fits, default_store

CTANB = [sys.executable, "-m", "ctanb"]


def ctanb(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*CTANB, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"ctanb {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def datastore_config(data_dir: Path, obs_ids: list[int], **sections) -> dict:
    return {
        "name": "test",
        "observations": {"datastore": {"path": str(data_dir / "hess-dl3-dr1"), "obs_ids": obs_ids}},
        **sections,
    }


# -- configuration -------------------------------------------------------------------------
def test_every_example_configuration_is_valid() -> None:
    assert {"msh1552_map", "cta1dc_gps_map", "crab_spectrum_hess"} <= set(EXAMPLES)
    for name, path in EXAMPLES.items():
        needed = [s for s in STEPS if s in (yaml.safe_load(path.read_text()) or {})]
        config = AnalysisConfig.read(path)
        assert config.sections() == needed, name
        # Round trip through YAML.
        again = AnalysisConfig.from_dict(yaml.safe_load(config.to_yaml()))
        assert again == config, name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mapz": {}}, "unknown section"),
        ({"maps": {"geom": {"wcs": {"binsz": 0.1}}}}, r"maps\.geom\.wcs\.binsz"),
        ({"observations": {}}, "exactly one of observations.archive and observations.datastore"),
        ({"observations": {"archive": {"criteria": {"targett": "Crab"}}}}, "targett"),
        ({"parallel": {"backend": "spark"}}, "parallel"),
    ],
)
def test_bad_configuration_is_a_config_error_naming_it(
    data_dir: Path, tmp_path: Path, change: dict, message: str
) -> None:
    config = datastore_config(data_dir, [20136], maps=MSH_CONFIG)
    config.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message):
        Workflow.read(path)


def test_ctanb_run_with_a_bad_configuration_prints_one_line(data_dir: Path, tmp_path: Path) -> None:
    config = datastore_config(data_dir, [20136], maps={"geom": {"wcs": {"binsz": 0.1}}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    done = ctanb("run", str(path), "--out", str(tmp_path / "out"), check=False)
    assert done.returncode == 1
    assert "ctanb: error: invalid" in done.stderr and "maps.geom.wcs.binsz" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_ctanb_run_does_not_overwrite_the_products_of_another_configuration(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = datastore_config(data_dir, [20136], maps=MSH_CONFIG)
    (out / "analysis.yaml").write_text(yaml.safe_dump(earlier))
    (out / "maps").mkdir()
    (out / "maps" / "counts.fits").write_bytes(b"earlier products")
    other = datastore_config(data_dir, [20137], maps=MSH_CONFIG)
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    done = ctanb("run", str(path), "--out", str(out), "--no-progress", check=False)
    assert done.returncode != 0
    assert "already holds the products of another analysis configuration" in done.stderr
    assert "--replace" in done.stderr and "Traceback" not in done.stderr
    assert (out / "maps" / "counts.fits").read_bytes() == b"earlier products"


# -- ctanb run + prov redo on the example map configurations -----------------------------
@pytest.mark.parametrize(
    ("example", "n_obs", "n_products"), [("msh1552_map", 5, 7), ("cta1dc_gps_map", 4, 6)]
)
def test_ctanb_run_example_then_redo_reproduces_the_products(
    archive_url: str, tmp_path: Path, example: str, n_obs: int, n_products: int
) -> None:
    out = tmp_path / "products"
    done = ctanb("run", example, "--out", str(out), "--archive", archive_url)
    # msh1552_map also writes its exclusion mask (HGPS sources)
    assert f"{n_obs} observation(s), {n_products} product(s)" in done.stdout
    assert "Data reduction" in done.stderr  # the progress bar
    for name in ("map_dataset", "counts", "background", "exposure", "excess", "significance"):
        assert (out / "maps" / f"{name}.fits").is_file(), name
    shown = ctanb("prov", "show", str(out / "maps" / "counts.fits")).stdout
    assert shown.count("used [event_files]") == n_obs
    # Redo the whole chain of the significance map (map-dataset then excess-map) from DL3.
    redo = ctanb(
        "prov", "redo", str(out / "maps" / "significance.fits"), "--out", str(tmp_path / "r")
    )
    assert "map-dataset 1.0, excess-map 1.0" in redo.stdout
    assert ": identical" in redo.stdout or "equal within rtol=1e-05" in redo.stdout
    # The replayed map-dataset activity wrote its other products too: counts are exact.
    for name in ("counts", "background", "exposure"):
        differences, _ = compare_fits(
            out / "maps" / f"{name}.fits", tmp_path / "r" / f"{name}.fits", rtol=TOLERANCES[name]
        )
        assert not differences, differences
    assert compare_fits(out / "maps" / "counts.fits", tmp_path / "r" / "counts.fits")[1]


def test_archive_search_with_no_observation_is_a_clear_error(
    archive_url: str, data_dir: Path, tmp_path: Path
) -> None:
    config = {
        "observations": {
            "archive": {"criteria": {"collection": "HESS-DL3-DR1", "obs_id": "99999999"}}
        },
        "maps": MSH_CONFIG,
    }
    path = tmp_path / "nothing.yaml"
    path.write_text(yaml.safe_dump(config))
    done = ctanb(
        "run", str(path), "--out", str(tmp_path / "out"), "--archive", archive_url, check=False
    )
    assert done.returncode == 1
    assert "ctanb: error: no observation selected" in done.stderr
    assert "Traceback" not in done.stderr


# -- Python API --------------------------------------------------------------------------
def test_workflow_from_python_records_the_analysis_activity(data_dir: Path, tmp_path: Path) -> None:
    config = datastore_config(data_dir, [20136, 20137], maps=MSH_CONFIG)
    result = Workflow(config).run(out=tmp_path, progress=False)
    assert [o.obs_id for o in result.observations] == ["20136", "20137"]
    assert set(result.products) >= {"maps/counts", "maps/significance"}
    assert (tmp_path / "analysis.yaml").is_file()
    assert AnalysisConfig.read(tmp_path / "analysis.yaml") == Workflow(config).config
    assert "<b>Analysis</b> of 2 observation(s)" in result._repr_html_()
    store = default_store()
    analyses = store.activities(name="analysis", status="completed")
    assert any(a.parameters.get("obs_ids") == ["20136", "20137"] for a in analyses)


def test_failed_step_keeps_earlier_products_and_records_the_failure(
    data_dir: Path, tmp_path: Path
) -> None:
    # The maps succeed; the spectrum's on region (the Crab) is outside the MSH 15-52 runs.
    spectrum = {"ra_deg": 83.633, "dec_deg": 22.0145}
    config = datastore_config(data_dir, [20136], maps=MSH_CONFIG, spectrum=spectrum)
    before = len(default_store().activities(name="analysis", status="failed"))
    with pytest.raises(AnalysisError, match="field of view"):
        Workflow(config).run(out=tmp_path, progress=False)
    assert (tmp_path / "maps" / "significance.fits").is_file()
    failed = default_store().activities(name="analysis", status="failed")
    assert len(failed) == before + 1
    assert "field of view" in (failed[0].message or "") or any(
        "field of view" in (a.message or "") for a in failed
    )
