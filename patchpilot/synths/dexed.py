"""Dexed (DX7), through the ``dexed-py`` bindings.

Every one of the DX7's 155 voice parameters is in the space (the DX7 has no filter or FX).
Values are the DX7's own integers; panel conversions show ratios, detune -7..+7, algorithm
1-32 and transposition in semitones. Dexed output is not normalised (up to one unit per
carrier): analysis code normalises loudness itself.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PatchPilotWarning, PresetError, SynthError
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, Preset, SynthEngine, Voice, USER_ORIGIN, read_preset_bytes
from patchpilot.synths.params import NativeValue, Param, ParamSpace
from patchpilot.synths.registry import DEXED

OPERATORS = (1, 2, 3, 4, 5, 6)
CURVES = ("-LIN", "-EXP", "+EXP", "+LIN")
LFO_WAVES = ("Triangle", "Saw Down", "Saw Up", "Square", "Sine", "S&H")
FREQ_MODES = ("Ratio", "Fixed")
ALGORITHMS = tuple(str(n) for n in range(1, 33))

#: Single-voice (VCED) sysex framing: F0, Yamaha, channel 0, format 0, byte count 155, ..., F7.
_VOICE_HEADER = bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B])
_VOICE_BYTES = 155
#: 32-voice (VMEM) bulk dump: F0, Yamaha, channel 0, format 9, byte count 4096, 32 packed
#: voices of 128 bytes, checksum, F7.
_BANK_HEADER = bytes([0xF0, 0x43, 0x00, 0x09, 0x20, 0x00])
_PACKED_VOICE_BYTES = 128
_BANK_PAYLOAD_BYTES = 32 * _PACKED_VOICE_BYTES
_BANK_BYTES = len(_BANK_HEADER) + _BANK_PAYLOAD_BYTES + 2
_SINGLE_BYTES = len(_VOICE_HEADER) + _VOICE_BYTES + 2


def _ratio(raw: float) -> float:
    return 0.5 if raw < 0.5 else float(raw)


def _coarse(ratio: float) -> float:
    return 0.0 if ratio < 0.75 else float(ratio)


def _offset(delta: float) -> tuple[Callable[[float], float], Callable[[float], float]]:
    return (lambda raw: raw + delta), (lambda native: native - delta)


def _int(name: str, group: str, high: int, default: int, *, low: int = 0, unit: str = "",
         musical: tuple[float, float] | None = None,
         convert: tuple[Callable[[float], float], Callable[[float], float]] | None = None) -> Param:
    to_native, from_native = convert if convert else (None, None)
    extra = {"to_native": to_native, "from_native": from_native} if convert else {}
    return Param(name, "continuous", group, low, high, default, unit=unit, integer=True, musical=musical, **extra)


def _choice(name: str, group: str, options: tuple[str, ...], default: int,
            musical: tuple[float, float] | None = None) -> Param:
    return Param(name, "choice", group, 0, len(options) - 1, default, options=options, musical=musical)


def _switch(name: str, group: str, default: int) -> Param:
    return Param(name, "switch", group, 0, 1, default)


def _build_params() -> ParamSpace:
    params: list[Param] = [
        _choice("algorithm", "oscillator", ALGORITHMS, 0),
        _int("feedback", "oscillator", 7, 0),
    ]
    for k in OPERATORS:
        op = f"op{k}_"
        params += [
            _int(op + "output_level", "oscillator", 99, 99 if k == 1 else 0),
            _choice(op + "freq_mode", "oscillator", FREQ_MODES, 0, musical=(0, 0)),
            _int(op + "coarse", "oscillator", 31, 1, unit="ratio", musical=(0, 14), convert=(_ratio, _coarse)),
            _int(op + "fine", "oscillator", 99, 0, unit="%", musical=(0, 99)),
            _int(op + "detune", "oscillator", 14, 7, convert=_offset(-7.0)),
        ]
    for k in OPERATORS:
        op = f"op{k}_"
        params += [_int(op + f"eg_rate_{i}", "envelope", 99, 99) for i in range(1, 5)]
        params += [_int(op + f"eg_level_{i}", "envelope", 99, 0 if i == 4 else 99) for i in range(1, 5)]
        params.append(_int(op + "rate_scaling", "envelope", 7, 0))
    params += [_int(f"pitch_eg_rate_{i}", "envelope", 99, 99) for i in range(1, 5)]
    params += [_int(f"pitch_eg_level_{i}", "envelope", 99, 50, musical=(35, 65)) for i in range(1, 5)]
    params += [
        _int("lfo_speed", "modulation", 99, 35),
        _int("lfo_delay", "modulation", 99, 0),
        _int("lfo_pitch_mod_depth", "modulation", 99, 0, musical=(0, 30)),
        _int("lfo_amp_mod_depth", "modulation", 99, 0, musical=(0, 60)),
        _switch("lfo_sync", "modulation", 0),
        _choice("lfo_wave", "modulation", LFO_WAVES, 0),
        _int("pitch_mod_sens", "modulation", 7, 3),
    ]
    for k in OPERATORS:
        op = f"op{k}_"
        params += [
            _int(op + "velocity_sens", "modulation", 7, 0),
            _int(op + "amp_mod_sens", "modulation", 3, 0),
        ]
    params += [
        _switch("osc_key_sync", "global", 1),
        _int("transpose", "global", 48, 24, unit="st", musical=(12, 36), convert=_offset(-24.0)),
    ]
    for k in OPERATORS:
        op = f"op{k}_"
        params += [
            _int(op + "breakpoint", "global", 99, 39, unit="note", convert=_offset(21.0)),
            _int(op + "left_depth", "global", 99, 0),
            _int(op + "right_depth", "global", 99, 0),
            _choice(op + "left_curve", "global", CURVES, 0),
            _choice(op + "right_curve", "global", CURVES, 0),
        ]
    return ParamSpace(params)


# VCED byte layout: 21 bytes per operator, OP6 first, then the globals.
_OP_FIELDS = (
    "eg_rate_1", "eg_rate_2", "eg_rate_3", "eg_rate_4",
    "eg_level_1", "eg_level_2", "eg_level_3", "eg_level_4",
    "breakpoint", "left_depth", "right_depth", "left_curve", "right_curve",
    "rate_scaling", "amp_mod_sens", "velocity_sens", "output_level",
    "freq_mode", "coarse", "fine", "detune",
)
_GLOBAL_FIELDS = (
    "pitch_eg_rate_1", "pitch_eg_rate_2", "pitch_eg_rate_3", "pitch_eg_rate_4",
    "pitch_eg_level_1", "pitch_eg_level_2", "pitch_eg_level_3", "pitch_eg_level_4",
    "algorithm", "feedback", "osc_key_sync",
    "lfo_speed", "lfo_delay", "lfo_pitch_mod_depth", "lfo_amp_mod_depth", "lfo_sync", "lfo_wave",
    "pitch_mod_sens", "transpose",
)


def _vced_names() -> list[str]:
    names = []
    for k in reversed(OPERATORS):
        names += [f"op{k}_{f}" for f in _OP_FIELDS]
    return names + list(_GLOBAL_FIELDS)


VCED_PARAM_ORDER = tuple(_vced_names())
assert len(VCED_PARAM_ORDER) == 145


def values_to_vced(values: dict[str, float], name: str) -> bytes:
    """155 bytes of DX7 voice data (VCED) from raw values."""
    data = bytes(int(round(values[n])) for n in VCED_PARAM_ORDER)
    label = name.encode("ascii", errors="replace")[:10].ljust(10)
    return data + bytes(b & 0x7F for b in label)


def vced_to_values(vced: bytes, params: ParamSpace) -> dict[str, float]:
    if len(vced) < 145:
        raise PresetError(f"DX7 voice data is {len(vced)} bytes, expected 155")
    return params.complete({n: float(vced[i]) for i, n in enumerate(VCED_PARAM_ORDER)})


def _segment_moves(values: dict[str, float], prefix: str, stage: int) -> bool:
    """Whether envelope stage ``stage`` (1-4) goes anywhere: it runs from the previous
    stage's level (stage 1 starts from level 4) to its own."""
    start = values[f"{prefix}level_{4 if stage == 1 else stage - 1}"]
    return start != values[f"{prefix}level_{stage}"]


def _checksum(data: bytes) -> int:
    return (-sum(data)) & 0x7F


class DexedEngine(SynthEngine):
    name = DEXED.name
    display_name = DEXED.display_name
    preset_suffix = DEXED.preset_suffix
    bank_suffixes = DEXED.bank_suffixes
    # a DX7 render costs a tenth of a Vital one; on 28 General MIDI notes 72 candidates
    # instead of 24 brought the DX7 answer's MR-STFT / MSS from 2.02 / 7.4 dB to 1.90 / 6.7
    min_rerank_candidates = 72
    swept_choices = (("algorithm", None),)
    variant_choices = ("lfo_wave", "op1_left_curve", "op1_right_curve", "op2_right_curve")

    def module_of(self, name: str) -> str:
        """As every synth's, except that the feedback goes with the algorithm (which decides
        the operator it feeds back)."""
        return "algorithm" if name == "feedback" else super().module_of(name)

    def drawing(self, module: str, values: Mapping[str, NativeValue]) -> dict | None:
        """An operator's envelope: its four rates and levels (0-99)."""
        if module.startswith("op"):
            return {"kind": "dx7-eg", "rates": [float(values[f"{module}_eg_rate_{i}"]) for i in range(1, 5)],  # type: ignore[arg-type]
                    "levels": [float(values[f"{module}_eg_level_{i}"]) for i in range(1, 5)]}  # type: ignore[arg-type]
        return None

    def __init__(self) -> None:
        self._params = _build_params()

    @property
    def params(self) -> ParamSpace:
        return self._params

    def patch(self, preset: Preset) -> Any:
        """The preset as a ``dexed.Patch``."""
        dexed = _import_dexed()
        values = self._params.complete(preset.values)
        vced = values_to_vced(values, preset.name)
        return dexed.Patch.from_sysex(vced + b"\x3f")

    def new_voice(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> DexedVoice:
        return DexedVoice(self, sample_rate)

    def velocity_sensitive(self, preset: Preset) -> bool:
        v = preset.values
        return any(v.get(f"op{k}_velocity_sens", 0) > 0 and v.get(f"op{k}_output_level", 0) > 0 for k in OPERATORS)

    def audible_operators(self, preset: Preset) -> list[int]:
        """Operators (1-6) heard directly or through the operators they modulate."""
        dexed = _import_dexed()
        values = self._params.complete(preset.values)
        algorithm = dexed.algorithms[int(values["algorithm"])]
        level = {k: values[f"op{k}_output_level"] for k in OPERATORS}
        audible = {c + 1 for c in algorithm.carriers if level[c + 1] > 0}
        matrix = algorithm.mod_matrix
        changed = True
        while changed:
            changed = False
            for target in list(audible):
                for source in OPERATORS:
                    if matrix[target - 1, source - 1] and level[source] > 0 and source not in audible:
                        audible.add(source)
                        changed = True
        return sorted(audible)

    def sets_pitch(self, name: str) -> bool:
        """The global transpose, an operator's detune and the pitch envelope's levels."""
        return name == "transpose" or name.startswith("pitch_eg_level_") or (
            name.startswith("op") and name.endswith("_detune"))

    def audible_params(self, preset: Preset) -> list[str]:
        values = self._params.complete(preset.values)
        ops = self.audible_operators(preset)
        lfo_used = (values["lfo_pitch_mod_depth"] > 0 and values["pitch_mod_sens"] > 0) or (
            values["lfo_amp_mod_depth"] > 0 and any(values[f"op{k}_amp_mod_sens"] > 0 for k in ops)
        )
        pitch_eg_used = any(values[f"pitch_eg_level_{i}"] != 50 for i in range(1, 5))
        names = []
        for name in self._params.names("continuous"):
            if name.startswith("op"):
                op = name[:4]
                scaled = values[op + "left_depth"] > 0 or values[op + "right_depth"] > 0
                if int(name[2]) not in ops or name.endswith(("_amp_mod_sens", "_velocity_sens")):
                    continue
                if name.endswith("_breakpoint") and not scaled:
                    continue  # the breakpoint only matters where a scaling depth is set
                if "_eg_rate_" in name and not _segment_moves(values, op + "eg_", int(name[-1])):
                    continue  # a rate between two equal levels changes nothing
                names.append(name)
            elif name.startswith("lfo_") or name == "pitch_mod_sens":
                if lfo_used:
                    names.append(name)
            elif name.startswith("pitch_eg_rate"):
                if pitch_eg_used and _segment_moves(values, "pitch_eg_", int(name[-1])):
                    names.append(name)
            elif name != "transpose":
                names.append(name)
        return names

    def preset_bytes(self, preset: Preset) -> bytes:
        """A single-voice DX7 sysex dump, as Dexed and hardware DX7s load it."""
        vced = values_to_vced(self._params.complete(preset.values), preset.name)
        return _VOICE_HEADER + vced + bytes([_checksum(vced), 0xF7])

    def _play_file_native(self, data: bytes, note: int, velocity: int, note_seconds: float,
                          total_seconds: float) -> np.ndarray:
        dexed = _import_dexed()
        voices, _ = _parse_syx(data)
        if len(voices) != 1:
            raise PresetError("not a single-voice DX7 sysex file")
        vced = voices[0]
        synth = dexed.DexedSynth(sample_rate=float(NATIVE_SAMPLE_RATE_HZ))
        # from_sysex takes the bare voice; the framed file would load a wrong voice silently
        synth.load_patch(dexed.Patch.from_sysex(vced + b"\x3f"))
        return np.asarray(synth.render(int(note), int(velocity), float(note_seconds), float(total_seconds)),
                          dtype=np.float32)

    def read_presets(self, path: Path) -> list[Preset]:
        """The voices of a DX7 sysex file. What Dexed loads imports: a stale checksum or
        bytes over 127 are one warning (read as Dexed reads them); a bank whose framing our
        reader refuses is given to dexed-py's own reader before it is refused."""
        data = read_preset_bytes(path)
        try:
            voices, problems = _parse_syx(data)
        except PresetError as exc:
            voices = _bank_as_dexed_reads_it(path)
            if voices is None:
                raise PresetError(f"{path}: {exc}") from None
            problems = [f"{exc}; imported as Dexed reads it"]
        if problems and len(voices) == 1:  # the voices as the synth's own package reads them
            voices = [_voice_as_dexed_reads_it(voices[0])]
        elif problems:
            voices = _bank_as_dexed_reads_it(path) or voices
        for problem in problems:
            warnings.warn(f"{path}: {problem}", PatchPilotWarning, stacklevel=2)
        presets = []
        for index, vced in enumerate(voices):
            name = bytes(b & 0x7F for b in vced[145:155]).decode("ascii", errors="replace").strip() or f"Voice {index + 1}"
            presets.append(Preset(self.name, name, vced_to_values(vced, self._params),
                                  origin=f"{USER_ORIGIN}{path.name}#{index + 1}"))
        return presets


def _parse_syx(data: bytes) -> tuple[list[bytes], list[str]]:
    """The voices (VCED) of a single-voice dump, a 32-voice bank or a bank's bare 4096-byte
    payload, and what is wrong with them that Dexed forgives (a stale checksum, bytes over
    127, masked to 7 bits as Dexed does). Framing or a length that no reader can make sense
    of is a :class:`PresetError`. Out-of-range values are clamped later, as a DX7 does."""
    yamaha = data[:2] == _VOICE_HEADER[:2]  # F0 43; then the channel, then the format
    if yamaha and data[3:6] == _VOICE_HEADER[3:]:
        payload, problems = _framed(data, _SINGLE_BYTES, "single-voice dump")
        return [payload], problems
    bank = re.search(rb"\xf0\x43[\x00-\x7f]\x09\x20\x00", data)
    # a bank dump may follow other sysex messages (as Dexed and dexed-py accept)
    if bank and (bank.start() == 0 or (data[0] == 0xF0 and data[bank.start() - 1] == 0xF7)):
        payload, problems = _framed(data[bank.start():], _BANK_BYTES, "32-voice bank")
        return _unpack_bank(payload), problems
    if len(data) == _BANK_PAYLOAD_BYTES:  # a bank saved without its sysex framing
        payload, problems = _seven_bit(data, "32-voice bank")
        return _unpack_bank(payload), problems
    raise PresetError(f"not a DX7 sysex file (expected a 32-voice bank of {_BANK_BYTES} bytes "
                      f"or a single voice of {_SINGLE_BYTES} bytes, got {len(data)} bytes)")


def _framed(data: bytes, size: int, what: str) -> tuple[bytes, list[str]]:
    """The payload of one framed dump of ``size`` bytes, and what Dexed forgives in it."""
    if len(data) != size:
        problem = "truncated" if len(data) < size else "extra bytes after it"
        raise PresetError(f"a DX7 {what} is {size} bytes, this file has {len(data)} ({problem})")
    if data[2] > 0x0F or data[-1] != 0xF7:
        raise PresetError(f"a DX7 {what} with broken sysex framing")
    payload, problems = _seven_bit(data[6:-2], what)
    if _checksum(data[6:-2]) != data[-2]:
        problems.append(f"the checksum of this DX7 {what} does not match its data (a stale checksum, or "
                        "damage); imported anyway, as Dexed does: listen to its voices")
    return payload, problems


def _seven_bit(payload: bytes, what: str) -> tuple[bytes, list[str]]:
    """The payload as it is, and a note where bytes in it are over 127 (the caller hands
    such data to dexed-py's own reader)."""
    if all(b <= 0x7F for b in payload):
        return payload, []
    return payload, [f"this DX7 {what} has bytes over 127 in its data (damaged?); read as dexed-py reads them"]


def _voice_as_dexed_reads_it(vced: bytes) -> bytes:
    """A single voice's bytes after a trip through dexed-py (which clamps what is out of range)."""
    return _import_dexed().Patch.from_sysex(vced[:_VOICE_BYTES] + b"\x3f").to_sysex()[:_VOICE_BYTES]


def _bank_as_dexed_reads_it(path: Path) -> list[bytes] | None:
    """The 32 voices of a bank file that dexed-py's own reader loads, or None where it cannot."""
    dexed = _import_dexed()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            patches = dexed.Patch.load_bank(str(path))
    except Exception:  # noqa: BLE001 - any failure of the reader means it cannot read the file
        return None
    if len(patches) != 32:
        return None
    return [patch.to_sysex()[:_VOICE_BYTES] for patch in patches]


def _unpack_bank(payload: bytes) -> list[bytes]:
    dexed = _import_dexed()
    return [dexed.Patch.from_packed(payload[i : i + _PACKED_VOICE_BYTES]).to_sysex()[:_VOICE_BYTES]
            for i in range(0, _BANK_PAYLOAD_BYTES, _PACKED_VOICE_BYTES)]


class DexedVoice(Voice):
    def __init__(self, engine: DexedEngine, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._engine = engine
        self._synth = _import_dexed().DexedSynth(sample_rate=float(NATIVE_SAMPLE_RATE_HZ))
        self._loaded: str | None = None

    def _render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                       total_seconds: float) -> np.ndarray:
        key = preset.fingerprint()
        if key != self._loaded:
            self._synth.load_patch(self._engine.patch(preset))
            self._loaded = key
        audio = self._synth.render(int(note), int(velocity), float(note_seconds), float(total_seconds))
        return np.asarray(audio, dtype=np.float32)


@lru_cache(maxsize=1)
def _import_dexed() -> Any:
    try:
        import dexed
    except ImportError as exc:  # pragma: no cover - dexed-py is a core dependency
        raise SynthError(f"the DX7 engine needs the 'dexed-py' package: pip install dexed-py ({exc})") from None
    return dexed
