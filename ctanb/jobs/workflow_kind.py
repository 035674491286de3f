"""The ``workflow`` kind: run a ``ctanb run`` configuration (:class:`ctanb.analysis.workflow.Workflow`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["run_workflow_config"]


def run_workflow_config(
    config: str | dict[str, Any], out: Path, job: Any, *, archive_url: str | None = None
) -> dict[str, Any]:
    """Run the workflow *config* (a YAML path or a mapping) with its products in *out*.

    Returns the output folder and every product (``section/name`` -> path).
    """
    from ..analysis.workflow import Workflow

    workflow = Workflow.read(config) if isinstance(config, str) else Workflow(config)
    job.log.info("workflow %s -> %s", config if isinstance(config, str) else "(inline)", out)
    result = workflow.run(out, archive_url=archive_url, progress=False)
    products = {name: Path(path).resolve() for name, path in result.products.items()}
    return {
        "out": out.resolve(),
        "obs_ids": [item.obs_id for item in result.observations],
        **products,
    }
