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

from dataclasses import dataclass
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
    engine = get_engine(preset.synth)
    base = directory / slug(stem)
    preset_file = base.with_suffix(engine.preset_suffix)
    audio_file = base.with_suffix(".wav")
    data = engine.preset_bytes(preset)
    preset_file.write_bytes(data)
    audio = play_exported(preset, note=note, velocity=velocity, note_seconds=note_seconds,
                          total_seconds=total_seconds, fx=fx, data=data)
    fx_file = fx_preset_file = None
    left_out: tuple[str, ...] = ()
    plugin_presets: list[Path] = []
    if fx:
        fx_file = base.with_suffix(".fx.json")
        fx.save(fx_file)
        for position, effect in enumerate(fx.effects, start=1):
            state = effect.spec.state(dict(effect.settings))
            if state is not None:
                plugin_presets.append(base.with_name(fx_plugin_preset_name(base.name, position, effect.kind)))
                plugin_presets[-1].write_bytes(state)
        native = preset_with_fx(preset, fx)
        if native is not None:
            fx_preset_file = base.with_name(f"{base.name}.with-fx{engine.preset_suffix}")
            fx_preset_file.write_bytes(native[0])
            left_out = native[1]
    write_wav(audio_file, audio, EXPORT_SAMPLE_RATE_HZ)
    return ExportedFiles(preset_file, audio_file, fx_file, fx_preset_file, left_out, tuple(plugin_presets))


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
