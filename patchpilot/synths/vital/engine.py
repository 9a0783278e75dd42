"""The engine: Vital as a :class:`SynthEngine`: its parameter space, the raw control values
and JSON of a preset, what is audible, voices, and importing a user's ``.vital`` file.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PresetError, SynthError
from patchpilot.synths.base import USER_ORIGIN, Preset, SynthEngine, read_preset_bytes
from patchpilot.synths.params import NativeValue, ParamSpace
from patchpilot.synths.registry import VITAL
from patchpilot.synths.vital.binding import import_vita, vita_limits
from patchpilot.synths.vital.checks import likely_cause, parse_document
from patchpilot.synths.vital.controls import LFOS, MOD_ROUTES, OSCILLATORS, curated_params, mod_param_name
from patchpilot.synths.vital.document import BaseState, base_for, preset_json, template_base
from patchpilot.synths.vital.fx import with_chain
from patchpilot.synths.vital.tables import PRESET_TABLE, WAVETABLE_OPTIONS, keyframe_count
from patchpilot.synths.vital.trial import VitaTrial
from patchpilot.synths.vital.voice import VitalVoice, first_note

if TYPE_CHECKING:
    from patchpilot.fx.chain import FxChain


class VitalEngine(SynthEngine):
    name = VITAL.name
    display_name = VITAL.display_name
    preset_suffix = VITAL.preset_suffix
    bank_suffixes = VITAL.bank_suffixes
    swept_choices = (("filter_1_model", "filter_1_on"), ("filter_2_model", "filter_2_on"),
                     ("osc_1_wavetable", "osc_1_on"), ("osc_2_wavetable", "osc_2_on"), ("osc_3_wavetable", "osc_3_on"))
    variant_choices = ("osc_1_wavetable", "osc_2_wavetable", "filter_1_model", "filter_2_model", "distortion_type",
                       "lfo_1_shape", "lfo_2_shape", "osc_1_spectral_morph_type")
    variant_switches = ("chorus_on", "reverb_on", "delay_on", "distortion_on", "phaser_on", "flanger_on", "eq_on")

    def __init__(self) -> None:
        self._params: ParamSpace | None = None
        self._template: BaseState | None = None
        self._lock = threading.Lock()

    # ---- parameter space --------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._params is not None:  # fast path: loaded once per process
            return
        with self._lock:
            if self._params is not None:
                return
            vita = import_vita()
            synth = vita.Synth()
            self._params = ParamSpace(curated_params(synth))
            self._check_routes(vita)
            self._template = template_base(synth)

    @staticmethod
    def _check_routes(vita: Any) -> None:
        # vita accepts unknown names and then segfaults on render: check them up front.
        sources, destinations = set(vita.get_modulation_sources()), set(vita.get_modulation_destinations())
        for src, dst in MOD_ROUTES:
            if src not in sources or dst not in destinations:
                raise SynthError(f"vita does not know the modulation {src} -> {dst}")

    @property
    def params(self) -> ParamSpace:
        self._ensure_loaded()
        assert self._params is not None
        return self._params

    def _base(self, preset: Preset) -> BaseState:
        self._ensure_loaded()
        if preset.base_state is None:
            assert self._template is not None
            return self._template
        return base_for(preset.base_state)

    # ---- JSON assembly -----------------------------------------------------------------
    def control_values(self, preset: Preset) -> dict[str, float]:
        """Vital control name -> raw value for every curated control and routing amount."""
        base = self._base(preset)
        values = self.params.complete(preset.values)
        controls = {n: v for n, v in values.items() if n in base.numeric}
        for name, value in controls.items():
            # An imported file may hold a value the space cannot express (an oscillator
            # routed to a single effect, a filter style past Vital's names): read_presets
            # clipped it; until something moves the parameter, the file's own value plays.
            own, param = base.numeric[name], self.params[name]
            if not param.low <= own <= param.high and abs(value - param.clip(own)) < 1e-6:
                controls[name] = own
        unwired = self._unwired_slots(preset)
        for (src, dst), slot in zip(MOD_ROUTES, base.route_slots):
            if slot and slot not in unwired:  # an unwired slot keeps whatever the file left in it
                controls[f"modulation_{slot}_amount"] = values[mod_param_name(src, dst)]
        return controls

    def structure_key(self, preset: Preset) -> tuple:
        """What needs a JSON load to change: base state, wavetables, LFO shapes and the
        routings written into an imported file's empty slots."""
        values = preset.values
        tables = tuple(int(values.get(f"osc_{n}_wavetable", 1)) for n in OSCILLATORS)
        shapes = tuple(int(values.get(f"lfo_{n}_shape", 1)) for n in LFOS)
        return (self._base(preset).key, tables, shapes, self._unwired_slots(preset))

    def _unwired_slots(self, preset: Preset) -> frozenset[int]:
        """An imported file's slots that a routing took but that stay empty: amount 0."""
        if preset.base_state is None:
            return frozenset()
        base = self._base(preset)
        values = self.params.complete(preset.values)
        return frozenset(slot for route, slot in zip(MOD_ROUTES, base.route_slots)
                         if slot in base.added_slots and values[mod_param_name(*route)] == 0.0)

    def to_json(self, preset: Preset) -> str:
        """The complete preset as Vital's JSON (what a ``.vital`` file holds)."""
        return preset_json(self._base(preset), preset, self.params.complete(preset.values),
                           self.control_values(preset), self._unwired_slots(preset))

    # ---- engine interface ----------------------------------------------------------------
    def new_voice(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> VitalVoice:
        self._ensure_loaded()
        return VitalVoice(self, sample_rate)

    def drawing(self, module: str, values: Mapping[str, NativeValue]) -> dict | None:
        """An envelope's ADSR (seconds, sustain 0-1) or a filter's cutoff and resonance."""
        if module.startswith("env_"):
            keys = ("attack", "decay", "sustain", "release")
            return {"kind": "adsr", **{k: float(values[f"{module}_{k}"]) for k in keys}}  # type: ignore[arg-type]
        if module.startswith("filter_"):
            return {"kind": "filter", "cutoff_hz": float(values[f"{module}_cutoff"]),  # type: ignore[arg-type]
                    "resonance": float(values[f"{module}_resonance"]) / 100.0,  # type: ignore[arg-type]
                    "style": str(values.get(f"{module}_style", ""))}
        return None

    def velocity_sensitive(self, preset: Preset) -> bool:
        # velocity_track only scales loudness, which every comparison normalises away;
        # what matters is velocity reaching the timbre through a modulation.
        values = preset.values
        if abs(values.get(mod_param_name("velocity", "filter_1_cutoff"), 0.0)) > 1e-6:
            return True
        base = self._base(preset)  # an imported preset's own velocity routings
        return any(src == "velocity" and (src, dst) not in MOD_ROUTES for src, dst in base.modulations)

    def audible_params(self, preset: Preset) -> list[str]:
        values = self.params.complete(preset.values)
        on = lambda name: values.get(name, 0.0) >= 0.5  # noqa: E731
        sources = [(f"osc_{n}", values[f"osc_{n}_destination"]) for n in OSCILLATORS if on(f"osc_{n}_on")]
        if on("sample_on"):
            sources.append(("sample", values["sample_destination"]))
        # destinations: 0 FILTER 1, 1 FILTER 2, 2 FILTER 1+2
        routed = {"filter_1": any(d in (0, 2) for _, d in sources), "filter_2": any(d in (1, 2) for _, d in sources)}
        active_modules = {name for name, _ in sources}
        active_modules |= {f for f in ("filter_1", "filter_2") if on(f + "_on") and routed[f]}
        active_modules |= {fx for fx in ("filter_fx", "distortion", "chorus", "delay", "reverb", "phaser", "flanger",
                                         "eq", "compressor") if on(fx + "_on")}
        used_sources = {"env_1"}
        for src, dst in MOD_ROUTES:
            module = _route_module(dst)
            if abs(values[mod_param_name(src, dst)]) > 1e-6 and (module == "voice" or module in active_modules):
                used_sources.add(src)
        names = []
        for name in self.params.names("continuous"):
            prefix = "_".join(name.split("_")[:2])
            head = name.split("_")[0]
            if name.startswith("mod_"):
                dst = next(d for s, d in MOD_ROUTES if mod_param_name(s, d) == name)
                module = _route_module(dst)
                if module == "voice" or module in active_modules:
                    names.append(name)
            elif head in ("env", "lfo"):
                if prefix in used_sources and not _inert_envelope_stage(values, name):
                    names.append(name)
            elif name == "velocity_track":
                continue  # only changes loudness, which every comparison normalises away
            elif prefix in active_modules or head in active_modules:
                if name.endswith(("unison_detune", "unison_blend")) and values[f"{prefix}_unison_voices"] < 2:
                    continue
                if name.endswith("wave_frame") and not _multi_frame(values[f"{prefix}_wavetable"]):
                    continue
                if name.endswith("spectral_morph_amount") and values[f"{prefix}_spectral_morph_type"] == 0:
                    continue
                if name.endswith("distortion_amount") and values[f"{prefix}_distortion_type"] == 0:
                    continue
                names.append(name)
        return names

    def preset_bytes(self, preset: Preset) -> bytes:
        return self.to_json(preset).encode("utf-8")

    def preset_bytes_with_fx(self, preset: Preset, chain: FxChain) -> tuple[bytes, tuple[str, ...]]:
        text, left_out = with_chain(self.to_json(preset), chain)
        return text.encode("utf-8"), left_out

    def _play_file_native(self, data: bytes, note: int, velocity: int, note_seconds: float,
                          total_seconds: float) -> np.ndarray:
        stereo = first_note(data.decode("utf-8", errors="replace"), note, velocity, note_seconds, total_seconds)
        return 0.5 * (stereo[0] + stereo[1])

    def read_presets(self, path: Path) -> list[Preset]:
        """A ``.vital`` file as a preset, when vita loads it and plays it (``trial.py``);
        otherwise a :class:`PresetError` naming the file, what vita did and, where known, why."""
        try:
            text = read_preset_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            raise PresetError(f"{path}: not a Vital preset (not UTF-8 text)") from None
        try:
            doc = parse_document(text)
        except PresetError as exc:
            raise PresetError(f"{path}: {exc}") from None
        complaint = _TRIAL.complaint(text)
        if complaint:
            cause = likely_cause(doc, vita_limits())
            raise PresetError(f"{path}: {complaint}" + (f": {cause}" if cause else ""))
        preset = self._imported(path, text, base_for(text))
        # our copy, as the voices will load it: a failure here is ours, not the file's
        complaint = _TRIAL.complaint(self.to_json(preset))
        if complaint:
            raise PresetError(f"{path}: vita plays the file, but not Patch Pilot's copy of it ({complaint}); "
                              "please report this")
        return [preset]

    def _imported(self, path: Path, text: str, base: BaseState) -> Preset:
        """The preset of a checked ``.vital`` file: its curated values, its own wavetables
        and LFO shapes (option 0), the routing amounts it sets."""
        values: dict[str, float] = {}
        for name, param in self.params.items():
            if name in base.numeric:
                values[name] = param.clip(base.numeric[name])
        for n in OSCILLATORS:
            values[f"osc_{n}_wavetable"] = 0.0
        for n in LFOS:
            values[f"lfo_{n}_shape"] = 0.0
        for (src, dst), slot in zip(MOD_ROUTES, base.route_slots):
            # a routing the file has keeps its amount; one in a slot the file left empty starts at 0
            own = slot and slot not in base.added_slots
            values[mod_param_name(src, dst)] = base.numeric.get(f"modulation_{slot}_amount", 0.0) if own else 0.0
        name = str(base.header.get("preset_name") or path.stem)
        category = str(base.header.get("preset_style") or "").lower()
        return Preset(self.name, name, self.params.complete(values), category=category,
                      origin=f"{USER_ORIGIN}{path.name}", base_state=text)


_TRIAL = VitaTrial()


def _inert_envelope_stage(values: dict[str, float], name: str) -> bool:
    """Envelope controls that cannot be heard: decay into a full sustain, the curve of an
    instant attack."""
    env = "_".join(name.split("_")[:2])
    if name.endswith(("_decay", "_decay_power")):
        return values[env + "_sustain"] >= 0.999
    if name.endswith("_attack_power"):
        return values[env + "_attack"] < 0.05
    return False


def _route_module(destination: str) -> str:
    """The module a routing destination belongs to: ``filter_1``, ``osc_2`` or ``voice``."""
    return "_".join(destination.split("_")[:2]) if destination.startswith(("filter", "osc")) else "voice"


def _multi_frame(table_index: float) -> bool:
    """Whether a wavetable option scans (has more than one keyframe)."""
    name = WAVETABLE_OPTIONS[int(table_index)]
    return name != PRESET_TABLE and keyframe_count(name) > 1

