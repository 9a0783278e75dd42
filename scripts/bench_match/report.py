"""The report plumbing every benchmark shares: the machine line, a section's header (title,
command, machine) and its place in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import re
from pathlib import Path

import numpy as np

from patchpilot.audio.io import Audio, load_clip, write_wav


ROOT = Path(__file__).resolve().parents[2]  # the repository: scripts/bench_match/report.py
REPORT = ROOT / "docs" / "BENCHMARKS.md"
NOISE_DB = -30.0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import dexed
    import vita

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
            f"vita {vita.__version__}, dexed-py {getattr(dexed, '__version__', '?')}")


def write_section(name: str, body: str) -> None:
    """Replace the section between <!-- name --> markers (or append it)."""
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\nWritten by `python -m scripts.bench_match`.\n"
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    REPORT.write_text(text)


def header(title: str, command: str) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"## {title}\n\nMeasured {stamp} on {machine()}.\n\n```\n{command}\n```\n"


def as_clip(samples: np.ndarray, rate: int, name: str) -> tuple[Audio, Audio | None]:
    """What ``PatchPilot.match`` makes of the samples as a WAV file: the clip at the
    analysis rate and its full-band copy (``io.load_clip``)."""
    buffer = io.BytesIO()
    write_wav(buffer, samples, rate)
    return load_clip(buffer.getvalue(), name=name, full_band=True)
