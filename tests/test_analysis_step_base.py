"""The analysis steps share one base class, gammapy Maker style: configured once
(strictly, errors naming the key), ``run`` returns a new result and leaves the step as it was."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import ctanb.analysis as analysis
from ctanb import ConfigError
from ctanb.analysis import ExclusionMaskConfig, ExclusionMaskStep, Step

GEOM = {
    "wcs": {
        "skydir": {"frame": "icrs", "lon": "228.53 deg", "lat": "-59.16 deg"},
        "binsize": "0.1 deg",
        "width": {"width": "1 deg", "height": "1 deg"},
    }
}
REGION = "icrs;circle(228.53,-59.16,0.2)"


def test_every_public_step_is_a_step_with_its_own_configuration_class() -> None:
    steps = {
        name: getattr(analysis, name)
        for name in analysis.__all__
        if (name.endswith("Step") and name != "Step") or name == "Workflow"
    }
    assert len(steps) >= 11
    for name, cls in steps.items():
        assert issubclass(cls, Step), name
        assert cls.config_class is not Step.config_class, name
        assert "__init__" not in vars(cls), f"{name} configures itself again"
        # Map3DFitStep is Map3DStep's recorded inner step: its one method is ``fit``.
        method = "fit" if name == "Map3DFitStep" else "run"
        assert inspect.isfunction(vars(cls).get(method)), name


def test_configured_once_strictly_and_run_returns_a_new_result(tmp_path: Path) -> None:
    config = ExclusionMaskConfig(geom=GEOM, regions=[REGION])
    assert ExclusionMaskStep(config).config is config  # a configuration is kept as it is
    step = ExclusionMaskStep({"geom": GEOM, "regions": [REGION]})
    assert step.config == config and repr(step) == "ExclusionMaskStep(ExclusionMaskConfig)"
    with pytest.raises(ConfigError, match=r"geom\.wcs\.colour: unknown setting"):
        ExclusionMaskStep({"geom": {"wcs": {**GEOM["wcs"], "colour": "red"}}})
    first = step.run(tmp_path / "a")
    second = step.run(tmp_path / "b")
    assert first is not second and step.config == config
    assert (
        first.products["exclusion_mask"].is_file() and second.products["exclusion_mask"].is_file()
    )
    assert not first.mask.data.all() and first.mask.data.any()  # the region is excluded


def test_the_base_class_alone_cannot_run() -> None:
    with pytest.raises(NotImplementedError, match="Step does not define run"):
        Step().run()


@pytest.mark.parametrize(
    ("kind", "recorded_as", "values"),
    [
        (
            "map-dataset",
            "ctanb.analysis.maps:MapDatasetConfig",
            {"geom": {"wcs": {"skydir": {"frame": "icrs", "lon": "83.6 deg", "lat": "22 deg"}}}},
        ),
        (
            "spectrum-datasets",
            "ctanb.analysis.spectrum:SpectrumConfig",
            {"ra_deg": 83.6, "dec_deg": 22},
        ),
    ],
)
def test_a_record_made_before_its_configuration_class_moved_is_redone(kind, recorded_as, values):
    # Products made before issue 19 name the configuration by its old module: a redo
    # must still rebuild it (and not refuse it as a class the step does not take).
    from ctanb.provenance._values import decode_value
    from ctanb.provenance.steps import registered_steps

    step = max(
        (s for (k, _), s in registered_steps().items() if k == kind), key=lambda s: s.version
    )
    config = decode_value({"__model__": [recorded_as, values]}, step.allowed_models())
    assert type(config).__qualname__ == recorded_as.rsplit(":", 1)[1]
    assert config.model_dump() == type(config).model_validate(values).model_dump()
