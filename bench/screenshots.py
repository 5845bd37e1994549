"""Screenshots of the mail screen at 1440 × 900 and 390 × 844 into docs/screenshots/.

    .venv/bin/python bench/screenshots.py

Runs the browser test tests/browser/test_screenshots.py (a filled Italian
mailbox on the test Dovecot, list and reader) with POSTA_SCREENSHOTS_DIR set, so
anyone can take them again after a change to the screen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    env["POSTA_SCREENSHOTS_DIR"] = str(ROOT / "docs" / "screenshots")
    env.setdefault("POSTA_DATA_DIR", str(ROOT / ".test-data"))
    command = [sys.executable, "-m", "pytest", "-n", "0", "-q",
               "tests/browser/test_screenshots.py"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    for path in sorted((ROOT / "docs" / "screenshots").glob("*.png")):
        print(path.relative_to(ROOT))
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
