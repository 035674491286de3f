"""numpydoc validation of every user-facing callable (tests/numpydoc_check.py says which
objects and which checks: GL08, PR01, PR02, PR03, RT01, YD01 and ctanb's RS01).

Every user-facing callable passes every check: a new finding fails the test. Coverage
before the check existed (2026-12-06, main): 129 of 396 callables passed all seven
checks (33 %); since issue 19: all of them (417 of 417 when the list became empty).
Step configurations document their keys once, in ``Field(description=...)``, from which
their ``Parameters`` section is made (ctanb/analysis/_fielddoc.py).
"""

from __future__ import annotations

from numpydoc_check import CHECKS, problems, user_facing

from ctanb.analysis import SpectrumConfig


def test_user_facing_callables_have_their_numpydoc_sections():
    objects = user_facing()
    assert len(objects) >= 390, "fewer user-facing callables than measured: check __all__"
    found = [
        f"{path}: {'; '.join(message for _, message in errors)}"
        for path, obj in objects.items()
        if (errors := problems(path, obj))
    ]
    assert not found, "numpydoc findings (" + ",".join(CHECKS) + "):\n" + "\n".join(found)


def test_a_configuration_key_is_documented_with_its_unit_default_and_bounds():
    # What help(SpectrumConfig) shows for a key inherited from OnOffConfig.
    doc = SpectrumConfig.__doc__
    assert "\nParameters\n----------\n" in doc
    lines = doc.split("\n")
    at = lines.index("on_radius_deg : float or None, default: 0.11")
    text = []
    for line in lines[at + 1 :]:
        if not line.startswith("    "):
            break
        text.append(line.strip())
    text = " ".join(text)
    assert "deg" in text and "RAD_MAX" in text and text.endswith("Must be > 0.")
