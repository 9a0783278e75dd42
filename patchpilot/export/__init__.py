"""Exporting matches: a native preset file the real synth loads, and a WAV of the match.

The WAV is the written preset file loaded in a fresh synth instance and played at 44.1 kHz
(:meth:`SynthEngine.render`): the note, velocity and hold of the match, then
EXPORT_TAIL_SECONDS for the release, then the match's effect chain (written beside it as
``<stem>.fx.json``, which ``patchpilot render --fx`` applies). Loading the file, playing
that note and running the chain gives the same audio, sample for sample. For a synth with
effects of its own (Vital), ``<stem>.with-fx.<suffix>`` also holds the chain set in them
where the synth has equivalents: one file to load, sounding alike rather than the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from patchpilot.audio.io import write_wav
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import UsageError
from patchpilot.fx import FxChain
from patchpilot.library.bank import slug
from patchpilot.synths import Preset, get_engine

#: Note and render length of exports that have no input to follow (text queries, ``render``).
EXPORT_NOTE_SECONDS = 1.5
EXPORT_RENDER_SECONDS = 3.0
#: Seconds the WAV of a match runs past the stretch it was compared on (its release).
EXPORT_TAIL_SECONDS = 1.0


@dataclass(frozen=True)
class ExportedFiles:
    preset_file: Path
    audio_file: Path
    #: The effect chain as JSON (None when the answer has none).
    fx_file: Path | None = None
    #: The preset with the chain set in the synth's own effects (None where it has none).
    fx_preset_file: Path | None = None
    #: The chain's effects that file leaves out, each with why.
    fx_left_out: tuple[str, ...] = ()
    #: A ``.vstpreset`` of each VST3 effect of the chain at its settings, in chain order.
    fx_plugin_presets: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Deliverable:
    """One file of an answer: its kind, its name, and its bytes, made when asked."""

    #: ``preset``, ``fx`` (the chain's JSON), ``preset-with-fx``, ``fx-plugin`` (a VST3
    #: effect's ``.vstpreset``; ``position`` says which) or ``audio`` (the WAV).
    kind: str
    name: str
    make: Callable[[], bytes] = field(repr=False, compare=False)
    position: int = 0

    def data(self) -> bytes:
        return self.make()


class Deliverables:
    """Every file an answer (a preset and its effect chain) comes with, named in one place:
    ``<stem>.<suffix>``, ``<stem>.fx.json``, ``<stem>.with-fx.<suffix>``,
    ``<stem>.fx-<n>-<plugin>.vstpreset`` and, given how to play it, ``<stem>.wav``. The CLI
    writes them (:func:`export_preset`); the page serves them."""

    def __init__(self, preset: Preset, stem: str, fx: FxChain = FxChain(),
                 audio: Callable[[bytes], np.ndarray] | None = None) -> None:
        self.preset, self.fx, self._audio = preset, fx, audio
        self.engine = get_engine(preset.synth)
        self.stem = slug(stem)

    @cached_property
    def preset_bytes(self) -> bytes:
        return self.engine.preset_bytes(self.preset)

    @cached_property
    def _with_fx(self) -> tuple[bytes, tuple[str, ...]] | None:
        return preset_with_fx(self.preset, self.fx)

    @property
    def fx_left_out(self) -> tuple[str, ...]:
        """The chain's effects the ``.with-fx`` preset leaves out, each with why."""
        return self._with_fx[1] if self._with_fx is not None else ()

    @cached_property
    def files(self) -> tuple[Deliverable, ...]:
        suffix = self.engine.preset_suffix
        files = [Deliverable("preset", f"{self.stem}{suffix}", lambda: self.preset_bytes)]
        if self.fx:
            files.append(Deliverable("fx", f"{self.stem}.fx.json", lambda: self.fx.to_json().encode()))
            for position, effect in enumerate(self.fx.effects, start=1):
                if effect.spec.source():
                    files.append(Deliverable("fx-plugin", fx_plugin_preset_name(self.stem, position, effect.kind),
                                             lambda e=effect: e.spec.state(dict(e.settings)) or b"", position))
            if self._with_fx is not None:
                files.append(Deliverable("preset-with-fx", f"{self.stem}.with-fx{suffix}",
                                         lambda: self._with_fx[0]))  # type: ignore[index]
        if self._audio is not None:
            files.append(Deliverable("audio", f"{self.stem}.wav", lambda: wav_file_bytes(self._audio(self.preset_bytes))))
        return tuple(files)

    def get(self, kind: str, position: int = 0) -> Deliverable | None:
        return next((f for f in self.files if f.kind == kind and f.position == position), None)


def wav_file_bytes(audio: np.ndarray) -> bytes:
    """The bytes of the export WAV (32-bit float, EXPORT_SAMPLE_RATE_HZ)."""
    import io

    buffer = io.BytesIO()
    write_wav(buffer, audio, EXPORT_SAMPLE_RATE_HZ)
    return buffer.getvalue()


def prepare_directory(directory: Path) -> Path:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--export {directory}: exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def export_preset(preset: Preset, directory: Path, stem: str, *, note: int, velocity: int,
                  note_seconds: float = EXPORT_NOTE_SECONDS, total_seconds: float = EXPORT_RENDER_SECONDS,
                  fx: FxChain = FxChain()) -> ExportedFiles:
    """Write ``<stem>.<suffix>`` (the preset), ``<stem>.fx.json`` (the effect chain, if
    any), ``<stem>.with-fx.<suffix>`` (the chain in the synth's own effects, where it has
    them), ``<stem>.fx-<n>-<plugin>.vstpreset`` (each VST3 effect of the chain at its settings,
    for a DAW's copy of the plugin) and ``<stem>.wav`` (the preset file played at ``note``,
    through the chain)."""
    files = Deliverables(preset, stem, fx, lambda data: play_exported(
        preset, note=note, velocity=velocity, note_seconds=note_seconds, total_seconds=total_seconds, fx=fx, data=data))
    written: dict[str, list[Path]] = {}
    for deliverable in files.files:
        path = directory / deliverable.name
        path.write_bytes(deliverable.data())
        written.setdefault(deliverable.kind, []).append(path)
    first = {kind: paths[0] for kind, paths in written.items()}
    return ExportedFiles(first["preset"], first["audio"], first.get("fx"), first.get("preset-with-fx"),
                         files.fx_left_out, tuple(written.get("fx-plugin", ())))


def fx_plugin_preset_name(stem: str, position: int, effect_name: str) -> str:
    """The file name of the chain's ``position``-th effect (a VST3 plugin) as a ``.vstpreset``."""
    return f"{stem}.fx-{position}-{slug(effect_name)}.vstpreset"


def preset_with_fx(preset: Preset, fx: FxChain) -> tuple[bytes, tuple[str, ...]] | None:
    """The preset file with the chain set in the synth's own effects and the effects left
    out (``<stem>.with-fx.<suffix>``); None where the synth holds none of the chain."""
    native = get_engine(preset.synth).preset_bytes_with_fx(preset, fx) if fx else None
    return native if native is not None and len(native[1]) < len(fx.effects) else None


def play_exported(preset: Preset, *, note: int, velocity: int, note_seconds: float, total_seconds: float,
                  fx: FxChain = FxChain(), data: bytes | None = None) -> np.ndarray:
    """What an exported match plays: its preset file loaded in a fresh synth, one note at
    EXPORT_SAMPLE_RATE_HZ, then the effect chain (the WAV of :func:`export_preset`, the
    pictures and the page's keyboard all hear this)."""
    engine = get_engine(preset.synth)
    data = engine.preset_bytes(preset) if data is None else data
    audio = engine.play_file(data, note, velocity, note_seconds, total_seconds, sample_rate=EXPORT_SAMPLE_RATE_HZ)
    return fx.apply(audio, EXPORT_SAMPLE_RATE_HZ) if fx else audio
