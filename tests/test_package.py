"""The package's public names: ``ctanb.__all__`` lists what a user imports, and
``import ctanb`` stays cheap (the heavy names load on first use)."""

from __future__ import annotations

import subprocess
import sys

import ctanb


def test_all_lists_the_main_classes_and_every_name_resolves():
    assert {"App", "Archive", "Criteria", "Results", "connect", "CtanbError"} <= set(ctanb.__all__)
    for name in ctanb.__all__:
        assert getattr(ctanb, name) is not None, name
    from ctanb.client import Archive
    from ctanb.widgets import App

    assert ctanb.Archive is Archive and ctanb.App is App


def test_import_ctanb_imports_no_widgets_pyvo_or_gammapy_until_used():
    code = (
        "import sys, ctanb; heavy = ('ipywidgets', 'pyvo', 'gammapy');"
        "print(*[m in sys.modules for m in heavy]); ctanb.App; print('ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, after_app = out.stdout.splitlines()
    assert first == "False False False", "import ctanb imported a heavy package"
    assert after_app == "True", "ctanb.App is the ipywidgets application, loaded on first use"


def test_subpackages_load_their_names_on_first_use_and_list_them():
    code = (
        "import sys, ctanb.analysis as a, ctanb.widgets as w;"
        "print('gammapy' in sys.modules, 'ipywidgets' in sys.modules);"
        "print({'MapStep', 'StepConfig'} <= set(dir(a)), {'App', 'SkyView'} <= set(dir(w)),"
        " {'Archive', 'CtanbError'} <= set(dir(sys.modules['ctanb'])));"
        "a.MapStep; print('gammapy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "True", "True", "True"]
    import ctanb.analysis

    for name in ctanb.analysis.__all__:
        assert getattr(ctanb.analysis, name) is not None, name
