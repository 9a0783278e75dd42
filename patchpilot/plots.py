"""Pictures of an answer: how a match differs from the input, and how a refinement went.

Per match, one PNG: the input's and the match's log-mel spectrograms side by side on one
colour scale, their difference, and the two amplitude envelopes overlaid; titled with the
preset, synth, distance and confidence label. The match is heard as it is exported
(``export.play_exported``: the preset file in a fresh synth, then the effect chain), the
input is the note it was compared on. Both start at their attack and are brought to the same
RMS first, as the distance compares timbre and shape, not level.

matplotlib is the optional extra ``patchpilot[plot]``, imported only when a picture is asked
for. Figures are built with ``matplotlib.figure.Figure`` (no pyplot): no global state, so
the server may draw from several threads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from patchpilot.audio import dsp
from patchpilot.audio.analysis import ENVELOPE_FRAME
from patchpilot.confidence import confidence_label
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import attack_start
from patchpilot.errors import MissingExtraError

#: Spectrogram of the pictures (at ANALYSIS_SAMPLE_RATE_HZ: 46 ms windows, 11.6 ms hops).
PLOT_N_FFT = 1024
PLOT_HOP = 256
PLOT_N_MELS = 96
#: Colour range of the spectrograms below their common peak, dB.
PLOT_RANGE_DB = 80.0
#: The difference picture saturates at this many dB either way.
PLOT_DIFF_DB = 30.0
PLOT_DPI = 100
FIGURE_INCHES = (12.0, 6.4)
_HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)

#: One progress report of a refinement: (evaluations done, budget, best loss so far).
ConvergencePoint = tuple[int, int, float]


def _figure_class():  # noqa: ANN202 - matplotlib.figure.Figure
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("pictures need matplotlib: pip install 'patchpilot[plot]'") from None
    return Figure


def check_available() -> None:
    """Raise :class:`MissingExtraError` (one line) when matplotlib is not installed."""
    _figure_class()


@dataclass(frozen=True)
class Picture:
    """What one match picture shows."""

    title: str
    match: np.ndarray  # mono at ANALYSIS_SAMPLE_RATE_HZ
    reference: np.ndarray | None = None  # the input's note (None for a text query)


def match_title(*, rank: int, name: str, synth: str, distance: float, labelled: bool, refined: bool,
                played: str = "") -> str:
    """The picture's title; ``played``: the key and velocity it was played at ("C4, velocity 100")."""
    label = f", {confidence_label(distance)}" if labelled else ""
    kind = " (refined)" if refined else ""
    at = f", played at {played}" if played else ""
    return f"#{rank} {name}{kind} on {synth}{at}: distance {distance:.3f}{label}"


def _mel_db(x: np.ndarray) -> np.ndarray:
    """``(n_mels, frames)`` in dB."""
    power = np.exp(dsp.log_mel(x, ANALYSIS_SAMPLE_RATE_HZ, PLOT_N_FFT, PLOT_HOP, PLOT_N_MELS))
    return (10.0 * np.log10(power + dsp.EPS)).T


def _envelope_db(x: np.ndarray) -> np.ndarray:
    return dsp.amplitude_to_db(dsp.rms_envelope(x, ENVELOPE_FRAME, PLOT_HOP))


def _mel_ticks() -> tuple[list[float], list[str]]:
    top = dsp.hz_to_mel(ANALYSIS_SAMPLE_RATE_HZ / 2)
    positions = [float(dsp.hz_to_mel(hz) / top * PLOT_N_MELS) for hz in _HZ_TICKS]
    return positions, [f"{hz // 1000}k" if hz >= 1000 else str(hz) for hz in _HZ_TICKS]


def draw_match(picture: Picture, target: Path | BinaryIO) -> None:
    """Write the PNG of one match to a path or a binary file."""
    Figure = _figure_class()
    # aligned at their attacks, as the distance compares them
    match = dsp.normalise_rms(picture.match[attack_start(picture.match):])
    reference = None
    if picture.reference is not None:
        reference = dsp.normalise_rms(picture.reference[attack_start(picture.reference):])
    if reference is not None:  # the same stretch of time for both
        length = min(match.size, reference.size)
        match, reference = match[:length], reference[:length]
    spectra = [_mel_db(x) for x in ([reference] if reference is not None else []) + [match]]
    top = max(float(s.max()) for s in spectra)
    seconds = match.size / ANALYSIS_SAMPLE_RATE_HZ
    extent = (0.0, seconds, 0.0, float(PLOT_N_MELS))
    ticks, tick_labels = _mel_ticks()

    figure = Figure(figsize=FIGURE_INCHES, dpi=PLOT_DPI, layout="constrained")
    grid = figure.add_gridspec(2, 3, height_ratios=(1.6, 1.0))
    panels = [("input", spectra[0]), ("match", spectra[1])] if reference is not None else [("match", spectra[0])]
    image = None
    for column, (label, spectrum) in enumerate(panels):
        axes = figure.add_subplot(grid[0, column])
        image = axes.imshow(spectrum, origin="lower", aspect="auto", extent=extent, cmap="magma",
                            vmin=top - PLOT_RANGE_DB, vmax=top, interpolation="nearest")
        axes.set_title(f"{label}: log-mel spectrogram")
        axes.set_xlabel("seconds")
        axes.set_yticks(ticks, tick_labels)
        if column == 0:
            axes.set_ylabel("Hz (mel scale)")
    if image is not None:
        figure.colorbar(image, ax=figure.axes[: len(panels)], label="dB", shrink=0.9)
    if reference is not None:
        axes = figure.add_subplot(grid[0, 2])
        difference = np.clip(spectra[1] - spectra[0], -PLOT_DIFF_DB, PLOT_DIFF_DB)
        diff_image = axes.imshow(difference, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                                 vmin=-PLOT_DIFF_DB, vmax=PLOT_DIFF_DB, interpolation="nearest")
        axes.set_title("match - input (red: match louder)")
        axes.set_xlabel("seconds")
        axes.set_yticks(ticks, tick_labels)
        figure.colorbar(diff_image, ax=axes, label="dB", shrink=0.9)

    axes = figure.add_subplot(grid[1, :])
    for label, x, colour in ((("input", reference, "#1f77b4"),) if reference is not None else ()) + (
            ("match", match, "#d62728"),):
        envelope = _envelope_db(x)
        times = np.arange(envelope.size) * PLOT_HOP / ANALYSIS_SAMPLE_RATE_HZ
        axes.plot(times, envelope, label=label, color=colour, linewidth=1.4)
    axes.set_xlim(0.0, seconds)
    peak = max(line.get_ydata().max() for line in axes.get_lines())
    axes.set_ylim(peak - 70.0, peak + 5.0)
    axes.set_title("amplitude envelopes (same RMS)")
    axes.set_xlabel("seconds")
    axes.set_ylabel("dB")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    figure.suptitle(picture.title, fontsize=13, fontweight="bold")
    figure.savefig(target, format="png")


def draw_convergence(points: Sequence[ConvergencePoint], target: Path | BinaryIO, *, title: str,
                     distance_before: float | None = None) -> None:
    """Best loss over evaluations of a refinement, from its progress reports."""
    Figure = _figure_class()
    figure = Figure(figsize=(8.0, 4.0), dpi=PLOT_DPI, layout="constrained")
    axes = figure.add_subplot()
    if points:
        done = [p[0] for p in points]
        best = np.minimum.accumulate([p[2] for p in points])
        axes.step(done, best, where="post", color="#d62728", linewidth=1.6, marker="o", markersize=3,
                  label="best so far")
        axes.set_xlim(0, max(max(done), points[-1][1]))
    if distance_before is not None:
        axes.axhline(distance_before, color="#555555", linestyle="--", linewidth=1.0,
                     label=f"matched preset: {distance_before:.3f}")
    axes.set_xlabel("parameter sets evaluated")
    axes.set_ylabel("refinement loss")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    figure.suptitle(title, fontsize=12, fontweight="bold")
    figure.savefig(target, format="png")


def png_bytes(draw, *args, **kwargs) -> bytes:  # noqa: ANN001 - one of the draw_* functions
    """A picture as PNG bytes instead of a file."""
    buffer = io.BytesIO()
    draw(*args, buffer, **kwargs)
    return buffer.getvalue()

