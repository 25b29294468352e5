"""Run ``slotvideo.cli.main`` with the tiny test model registered (subprocess and DDP tests)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import tiny_workbench  # noqa: E402,F401

from slotvideo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
