"""Give an index that lacks them its sketches (``index/sketches.py``) in its own folder.

    python -m scripts.sketch_index indexes/default      # how the shipped index got its sketches

For a user's index, ``patchpilot build-index --index DIR --describe`` does the same as a new
version; this script is for the shipped index, a flat folder kept as it is in the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patchpilot.index.index import PresetIndex
from patchpilot.index.manage import add_sketches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    def progress(stage: str, done: int, total: int) -> None:
        print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr)

    with PresetIndex.open(args.index) as index:
        count = add_sketches(index, index.files, workers=args.workers, progress=progress)
    print(f"\nsketched {count} presets in {args.index}", file=sys.stderr)


if __name__ == "__main__":
    main()
