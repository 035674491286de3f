"""numpydoc validation of every user-facing callable (tests/numpydoc_check.py says which
objects and which checks: GL08, PR01, PR02, PR03, RT01, YD01 and ctanb's RS01).

Objects still missing sections are listed in tests/numpydoc_todo.txt with their codes.
The list only shrinks: a new object or a new finding fails, and so does an entry that
passes now (take it off the list). Coverage before the check existed (2026-12-06, main):
129 of 396 callables passed all seven checks (33 %).
"""

from __future__ import annotations

from pathlib import Path

from numpydoc_check import CHECKS, problems, user_facing

TODO = Path(__file__).with_name("numpydoc_todo.txt")


def _todo() -> dict[str, set[str]]:
    entries = {}
    for line in TODO.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, codes = line.split()
            entries[path] = set(codes.split(","))
    return entries


def test_user_facing_callables_have_their_numpydoc_sections():
    todo = _todo()
    objects = user_facing()
    assert len(objects) >= 390, "fewer user-facing callables than measured: check __all__"
    new, fixed = [], []
    for path, obj in objects.items():
        codes = {code for code, _ in problems(path, obj)}
        allowed = todo.get(path, set())
        if codes - allowed:
            details = "; ".join(m for c, m in problems(path, obj) if c in codes - allowed)
            new.append(f"{path}: {details}")
        elif allowed - codes:
            fixed.append(f"{path} {','.join(sorted(codes)) or '(passes)'}")
    assert not new, "numpydoc findings (" + ",".join(CHECKS) + "):\n" + "\n".join(new)
    assert not fixed, f"update {TODO.name}, these now pass more checks:\n" + "\n".join(fixed)
    assert set(todo) <= set(objects), f"{TODO.name} lists objects that are gone"
