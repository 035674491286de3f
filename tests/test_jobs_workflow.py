"""Workflow and redo jobs: a real gammapy map analysis run as a job, its provenance, its redo."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from ctanb.jobs import JobManager, Phase
from ctanb.provenance import default_store


def _config(data_dir: Path) -> dict:
    return {
        "name": "job-test-map",
        "observations": {"datastore": {"path": str(data_dir / "hess-dl3-dr1"), "obs_ids": [23523]}},
        "maps": {
            "geom": {
                "wcs": {
                    "skydir": {"frame": "icrs", "lon": "83.633 deg", "lat": "22.014 deg"},
                    "binsize": "0.1 deg",
                    "width": {"width": "1 deg", "height": "1 deg"},
                    "binsize_irf": "0.2 deg",
                },
                "axes": {
                    "energy": {"min": "1 TeV", "max": "10 TeV", "nbins": 1},
                    "energy_true": {"min": "0.5 TeV", "max": "20 TeV", "nbins": 3},
                },
            },
            "background": {"method": "fov_background"},
        },
    }


def test_workflow_job_exposes_its_activities_and_products_then_redo_job(data_dir, tmp_path):
    jobs = JobManager(tmp_path / "jobs.db", jobs_dir=tmp_path / "jobs")
    job = jobs.submit("workflow", {"config": _config(data_dir)}, name="Crab map").wait(300)
    assert job.phase == Phase.COMPLETED, job.log
    results = job.results
    assert results["obs_ids"] == ["23523"]
    counts = results["maps/counts"]
    assert counts.parent == job.work_dir / "products" / "maps" and counts.is_file()
    assert fits.getdata(counts).sum() > 0
    prov = job.provenance
    assert str(counts) in prov.products
    names = {default_store().get_activity(a).name for a in prov.activities}
    assert "analysis" in names and len(names) >= 2
    assert "gammapy.makers.reduce" in job.log  # gammapy's logging lands in the job log

    redo = jobs.submit("redo", {"product": str(counts)}).wait(300)
    assert redo.phase == Phase.COMPLETED, redo.log
    assert redo.results["ok"] is True, redo.results["report"]
    assert redo.results["new_product"].is_file()
    assert redo.results["new_product"].parent.is_relative_to(redo.work_dir / "redo")
