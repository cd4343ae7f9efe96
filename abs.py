#!/usr/bin/env python3
"""pyBursar's entry point: `python abs.py <command>`.  Works from any directory."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bursar.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
