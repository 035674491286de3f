"""Build ctanb/static/samp_bridge.js, the single ES module anywidget loads, from the sources here.

The sources are plain ES modules importing each other by relative path; the build
concatenates them in dependency order and drops those relative imports, so no
bundler (node, esbuild) is needed. Run after editing a source:

    .venv/bin/python widgets/samp_bridge/build.py

tests/test_samp_bridge.py fails when the built file is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent.parent / "ctanb" / "static" / "samp_bridge.js"
#: Dependency order: each file only imports from files before it.
SOURCES = ("xmlrpc.js", "webclient.js", "relay.js", "index.js")
_RELATIVE_IMPORT = re.compile(r'^import\s+[^;]*?\s+from\s+"\./[^"]+";\s*$', re.MULTILINE)


def build() -> str:
    """The text of the bundled module."""
    parts = [
        "// Built by widgets/samp_bridge/build.py from widgets/samp_bridge/*.js: do not edit.\n"
    ]
    for name in SOURCES:
        text = _RELATIVE_IMPORT.sub("", (HERE / name).read_text())
        parts.append(f"\n// ---- {name} ----\n{text.strip()}\n")
    return "".join(parts)


def main() -> int:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(build())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
