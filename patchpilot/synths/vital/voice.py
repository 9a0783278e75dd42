"""The voice: one ``vita.Synth`` that renders presets in turn (warm-up, flush), and the first
note of a preset file on a fresh Synth, which user files always get.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from patchpilot.errors import SynthError
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, USER_ORIGIN, Preset, Voice
from patchpilot.synths.vital.binding import import_vita

if TYPE_CHECKING:  # the engine makes the voices; a voice only calls back into the one that made it
    from patchpilot.synths.vital.engine import VitalEngine

_EFFECT_SWITCHES = tuple(f"{fx}_on" for fx in (
    "chorus", "compressor", "delay", "distortion", "eq", "filter_fx", "flanger", "phaser", "reverb"))


class VitalVoice(Voice):
    """One ``vita.Synth``. Reloads JSON only when the preset's structure changes.

    A user's own ``.vital`` file plays on a fresh Synth every time, as its first note
    after loading: what the user hears. Its modulators, effect LFOs and envelopes would
    otherwise start from the state the voice's last note left them in (pooled renders of
    such files differ from the first note by as much as two different presets do).
    Our own presets are designed so that the reused voice plays them close enough.
    """

    #: Length of the render that retires a voice still releasing (seconds).
    _FLUSH_SECONDS = 0.005
    #: Length of the note that lets control glides settle before the real render.
    _WARMUP_SECONDS = 0.1

    def __init__(self, engine: VitalEngine, sample_rate: int) -> None:
        super().__init__(sample_rate)
        vita = import_vita()
        self._engine = engine
        self._synth = vita.Synth()
        self._synth.set_sample_rate(float(NATIVE_SAMPLE_RATE_HZ))
        self._controls = self._synth.get_controls()
        self._loaded: tuple | None = None

    def _load(self, preset: Preset) -> None:
        key = self._engine.structure_key(preset)
        if key != self._loaded:
            if not self._synth.load_json(self._engine.to_json(preset)):
                self._loaded = None
                raise SynthError(f"vita could not load preset {preset.name!r}")
            self._loaded = key
            return
        for name, raw in self._engine.control_values(preset).items():
            self._controls[name].set(float(raw))

    def _render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                       total_seconds: float) -> np.ndarray:
        stereo = self._render_native_stereo(preset, note, velocity, note_seconds, total_seconds)
        return (0.5 * (stereo[0] + stereo[1])).astype(np.float32, copy=False)

    def _render_native_stereo(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                              total_seconds: float) -> np.ndarray:
        if plays_fresh(preset):
            return first_note(self._engine.to_json(preset), note, velocity, note_seconds, total_seconds)
        self._load(preset)
        # Vital glides every changed control to its new value during the first note after a
        # change, so a render would depend on the preset rendered before it. A short
        # warm-up note lets the glides finish; the flush then clears its voice and tails.
        self._synth.render(int(note), velocity / 127.0, self._WARMUP_SECONDS / 2, self._WARMUP_SECONDS)
        self._flush()
        self._restore(preset)
        stereo = self._synth.render(int(note), velocity / 127.0, float(note_seconds), float(total_seconds))
        self._flush()
        return np.asarray(stereo, dtype=np.float32)

    def _restore(self, preset: Preset) -> None:
        """Put back the controls the flush changed."""
        values = self._engine.params.complete(preset.values)
        for name in ("env_1_attack", "env_1_release", *_EFFECT_SWITCHES):
            self._controls[name].set(float(values[name]))

    def _flush(self) -> None:
        # Cut the amp envelope so a voice still releasing dies now instead of sounding in
        # the next render, and switch every effect off for the flush: an effect switched
        # back on starts from empty buffers, so reverb, delay and chorus tails of this
        # render do not leak into the next one. The next _load() restores all of it.
        self._controls["env_1_attack"].set(0.0)
        self._controls["env_1_release"].set(0.0)
        for switch in _EFFECT_SWITCHES:
            self._controls[switch].set(0.0)
        self._synth.render(60, 0.5, self._FLUSH_SECONDS / 2, self._FLUSH_SECONDS)


def first_note(text: str, note: int, velocity: int, note_seconds: float, total_seconds: float) -> np.ndarray:
    """A preset's JSON loaded in a fresh Synth and its first note played, as a user hears
    it after loading the file: ``(2, N)`` float32 at the native rate. With every
    oscillator's random phase off (our files say so) this is bit-identical every time."""
    synth = import_vita().Synth()
    synth.set_sample_rate(float(NATIVE_SAMPLE_RATE_HZ))
    if not synth.load_json(text):
        raise SynthError("vita could not load the preset file")
    return np.asarray(synth.render(int(note), velocity / 127.0, float(note_seconds), float(total_seconds)),
                      dtype=np.float32)


def plays_fresh(preset: Preset) -> bool:
    """Whether voices render this preset on a fresh Synth (see :class:`VitalVoice`): a
    user's file, and the refinement's variations of it (slower: ~0.15 s more a render)."""
    return preset.origin.startswith(USER_ORIGIN)

