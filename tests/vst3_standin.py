"""A stand-in VST3 instrument with pedalboard's plugin interface, for the engine's tests.

No VST3 instrument can be installed here, so the instrument path is tested on this: MIDI in
(pedalboard's ``(bytes, seconds)`` tuples or mido messages), audio out, a ``parameters``
dict of objects shaped like ``pedalboard.AudioProcessorParameter`` (name, units, type,
``ranges`` sampled from the display text, ``raw_value`` normalised 0..1), programs through a
``current_program`` parameter (as JUCE and DPF wrappers expose them), state as ``.vstpreset``
bytes (``preset_data``) and ``raw_state``, and ``reset``. Like a real VST3 plugin seen
through a host, a parameter change reaches the processor only with the next processed block
(ZamComp's state showed that), and ``reset=True`` clears voices and the chorus' delay line.
The sound: an oscillator (sine, saw, square) through a low-pass filter, an ADSR envelope
and a chorus, in numpy.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from scipy.signal import butter, lfilter

RAW_STEPS = 1000


class StandInParameter:
    """What pedalboard's ``AudioProcessorParameter`` offers, for one parameter."""

    def __init__(self, plugin: StandInSynth, key: str, label: str, *, units: str = "", options: tuple[str, ...] = (),
                 low: float = 0.0, high: float = 1.0, log: bool = False, boolean: bool = False, default: float = 0.0):
        self._plugin, self._key = plugin, key
        self.name, self.python_name, self.units, self.label = label, key, units, units
        self.options, self.low, self.high, self.log, self.is_boolean = options, low, high, log, boolean
        self.type = bool if boolean else (str if options else float)
        self.default_raw_value = float(default)
        self.is_discrete = bool(options) or boolean
        self.min_value = None if options else low
        self.max_value = None if options else high
        edges = np.linspace(0.0, 1.0, (len(options) if options else (2 if boolean else RAW_STEPS)) + 1)
        self.ranges = {(float(a), float(b)): self.value_at((a + b) / 2) for a, b in zip(edges[:-1], edges[1:])}
        self.valid_values = list(self.ranges.values())

    def value_at(self, raw: float) -> object:
        if self.options:
            return self.options[min(int(raw * len(self.options)), len(self.options) - 1)]
        if self.is_boolean:
            return raw >= 0.5
        if self.log:
            return float(self.low * (self.high / self.low) ** raw)
        return float(self.low + raw * (self.high - self.low))

    @property
    def raw_value(self) -> float:
        return self._plugin._pending.get(self._key, self._plugin._state[self._key])

    @raw_value.setter
    def raw_value(self, value: float) -> None:
        self._plugin._pending[self._key] = min(max(float(value), 0.0), 1.0)

    @property
    def string_value(self) -> str:
        return str(self.value_at(self.raw_value))


#: Programs: name -> normalised values.
PROGRAMS = {
    "Soft Sine": {"waveform": 0.1, "cutoff_hz": 0.9, "attack_s": 0.3, "release_s": 0.4, "chorus": 0.0},
    "Bright Saw": {"waveform": 0.5, "cutoff_hz": 0.8, "attack_s": 0.0, "release_s": 0.2, "chorus": 1.0},
    "Dark Square": {"waveform": 0.9, "cutoff_hz": 0.25, "attack_s": 0.05, "release_s": 0.1, "chorus": 0.0},
    "Pluck": {"waveform": 0.5, "cutoff_hz": 0.6, "attack_s": 0.0, "decay_s": 0.1, "sustain": 0.0, "release_s": 0.1},
}


class StandInSynth:
    """The instrument. Construct it as pedalboard's ``load_plugin`` would return one."""

    is_instrument = True
    is_effect = False
    name = "Stand-In Synth"
    programs = PROGRAMS

    def __init__(self) -> None:
        self._state: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        specs = [
            ("current_program", "Current Program", dict(options=tuple(self.programs))),
            ("waveform", "Waveform", dict(options=("Sine", "Saw", "Square"), default=0.5)),
            ("cutoff_hz", "Cutoff", dict(units="Hz", low=80.0, high=12000.0, log=True, default=0.7)),
            ("attack_s", "Attack", dict(units="s", low=0.001, high=1.0, log=True, default=0.0)),
            ("decay_s", "Decay", dict(units="s", low=0.01, high=2.0, log=True, default=0.5)),
            ("sustain", "Sustain", dict(units="%", low=0.0, high=100.0, default=0.8)),
            ("release_s", "Release", dict(units="s", low=0.01, high=2.0, log=True, default=0.2)),
            ("chorus", "Chorus", dict(boolean=True, default=0.0)),
            ("bypass", "Bypass", dict(boolean=True, default=0.0)),
        ]
        self.parameters = {}
        for key, label, options in specs:
            parameter = StandInParameter(self, key, label, **options)
            self.parameters[key] = parameter
            self._state[key] = parameter.default_raw_value
        self._chorus_memory = np.zeros(0, np.float32)
        self.reset_count = 0

    # ---- state ---------------------------------------------------------------------------
    def _apply_pending(self) -> None:
        if "current_program" in self._pending:  # a program change loads a whole patch
            program = self.parameters["current_program"].value_at(self._pending["current_program"])
            self._state.update({key: p.default_raw_value for key, p in self.parameters.items()})
            self._state.pop("crash", None)
            self._state.update(self.programs[program])
        self._state.update(self._pending)
        self._pending.clear()

    def _value(self, key: str) -> object:
        return self.parameters[key].value_at(self._state[key])

    @property
    def preset_data(self) -> bytes:
        return b"VST3" + json.dumps(self._state, sort_keys=True).encode()

    @preset_data.setter
    def preset_data(self, data: bytes) -> None:
        if not data.startswith(b"VST3"):
            raise ValueError("not a .vstpreset")
        self._state = json.loads(data[4:].decode())
        self._pending.clear()

    @property
    def raw_state(self) -> bytes:
        """As pedalboard's JUCE host writes it: ``VC2!``, the XML's length, XML holding the
        component state (here the JSON of the values) in JUCE's base64, a null byte."""
        from patchpilot.plugins.fxp import juce_base64_encode

        component = juce_base64_encode(json.dumps(self._state, sort_keys=True).encode())
        xml = (b'<?xml version="1.0" encoding="UTF-8"?> <VST3PluginState><IComponent>' + component
               + b"</IComponent></VST3PluginState>")
        return b"VC2!" + len(xml).to_bytes(4, "little") + xml + b"\x00"

    @raw_state.setter
    def raw_state(self, data: bytes) -> None:
        from patchpilot.plugins.fxp import component_state

        self._state = json.loads(component_state(data).decode())
        self._pending.clear()

    def load_preset(self, path: str) -> None:
        with open(path, "rb") as handle:
            self.preset_data = handle.read()

    def reset(self) -> None:
        self._chorus_memory = np.zeros(0, np.float32)
        self.reset_count += 1

    # ---- audio ---------------------------------------------------------------------------
    def __call__(self, midi_messages, duration: float, sample_rate: float, num_channels: int = 2,
                 buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        if os.environ.get("STANDIN_CHATTER"):  # like real plugins: straight to the descriptors
            os.write(1, b"stand-in: rendering a block\n")
            os.write(2, b"stand-in: some warning\n")
        if reset:
            self.reset()
        self._apply_pending()
        frames = int(round(duration * sample_rate))
        events = []
        for message in midi_messages:
            data, time = (bytes(message.bytes()), float(message.time)) if hasattr(message, "bytes") else \
                (bytes(message[0]), float(message[1]))
            if time <= duration:
                events.append((time, data))
        out = np.zeros(frames, np.float64)
        on = [(t, d[1], d[2]) for t, d in events if d[0] & 0xF0 == 0x90 and d[2] > 0]
        for start, note, velocity in on:
            ends = [t for t, d in events if t > start and d[1] == note and (d[0] & 0xF0 == 0x80 or d[2] == 0)]
            out += self._voice(note, velocity, start, min(ends) if ends else duration, frames, sample_rate)
        if self._value("chorus"):
            delay = int(0.012 * sample_rate)
            moved = np.concatenate([np.zeros(delay), out])[:frames]
            out = 0.7 * out + 0.5 * moved
        crashes = self._state.get("crash", 0.0) >= 0.5 and not os.environ.get("STANDIN_NO_CRASH")
        if crashes and os.environ.get("STANDIN_CRASH_PID") != str(os.getpid()):
            os.abort()  # a plugin that takes its process down (not the test's own process)
        stereo = np.stack([out, np.roll(out, 7) if self._value("chorus") else out])[:num_channels]
        return stereo.astype(np.float32)

    def _voice(self, note: int, velocity: int, start: float, end: float, frames: int, rate: float) -> np.ndarray:
        t = np.arange(frames) / rate - start
        frequency = 440.0 * 2 ** ((note - 69) / 12)
        phase = (frequency * np.clip(t, 0, None)) % 1.0
        shape = self._value("waveform")
        wave = {"Sine": np.sin(2 * math.pi * phase), "Saw": 2 * phase - 1,
                "Square": np.where(phase < 0.5, 1.0, -1.0)}[shape]
        attack, decay = float(self._value("attack_s")), float(self._value("decay_s"))
        sustain, release = float(self._value("sustain")) / 100, float(self._value("release_s"))
        held = end - start
        level = np.where(t < attack, t / attack, np.maximum(sustain, 1 - (1 - sustain) * (t - attack) / decay))
        at_release = np.interp(held, t, level) if 0 < held < t[-1] else sustain
        level = np.where(t >= held, at_release * np.maximum(0, 1 - (t - held) / release), level)
        signal = np.where(t >= 0, wave * np.clip(level, 0, 1), 0.0) * velocity / 127 * 0.5
        cutoff = min(float(self._value("cutoff_hz")), 0.45 * rate)
        b, a = butter(2, cutoff, fs=rate)  # a causal two-pole low-pass, as an analogue-style filter
        return lfilter(b, a, signal)


class CrashingStandInSynth(StandInSynth):
    """The same instrument with a program that aborts the process that renders it."""

    name = "Crashing Stand-In"
    programs = {**PROGRAMS, "Crash": {**PROGRAMS["Pluck"], "crash": 1.0}}
