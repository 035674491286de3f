"""Build the panels' front-end files into ctanb/static/ (no bundler needed).

* ``widgets/table/*``, ``widgets/skyview/*`` and ``widgets/action/*`` are plain ES modules and CSS,
  copied as ``ctanb/static/ctanb_<name>.{js,css}`` (committed, small).
* Aladin Lite comes from the npm package ``aladin-lite`` (``npm ci --prefix
  widgets`` puts it in ``widgets/node_modules``) and is copied to
  ``ctanb/static/aladin/aladin.js`` (not committed: ``ctanb/static/.gitignore``).
  The SkyView asks the kernel for that file at run time, so nothing is fetched
  from esm.sh or any other CDN.

Run after editing a source or updating aladin-lite::

    npm ci --prefix widgets && .venv/bin/python widgets/build.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "ctanb" / "static"
#: (source, target name in ctanb/static)
COPIES = (
    ("table/table.js", "ctanb_table.js"),
    ("table/table.css", "ctanb_table.css"),
    ("skyview/skyview.js", "ctanb_skyview.js"),
    ("skyview/skyview.css", "ctanb_skyview.css"),
    ("action/action.js", "ctanb_action.js"),
)
ALADIN = HERE / "node_modules" / "aladin-lite" / "dist" / "aladin.js"


def build(*, require_aladin: bool = True) -> list[Path]:
    """Copy the sources and Aladin Lite into ctanb/static; returns the files written."""
    written = []
    for source, name in COPIES:
        target = STATIC / name
        text = (HERE / source).read_text()
        banner = f"/* Built by widgets/build.py from widgets/{source}: do not edit. */\n"
        target.write_text(banner + text)
        written.append(target)
    if ALADIN.is_file():
        target = STATIC / "aladin" / "aladin.js"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ALADIN, target)
        written.append(target)
    elif require_aladin:
        raise SystemExit(f"{ALADIN} is missing: run `npm ci --prefix widgets` first")
    return written


def main() -> int:
    for path in build(require_aladin="--no-aladin" not in sys.argv):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
