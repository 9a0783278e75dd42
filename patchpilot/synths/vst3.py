"""VST3 instruments through pedalboard: one engine per plugin, built from its own parameters.

A plugin engine is named ``vst3:<slug of the plugin's name>`` (``vst3:surge-xt``). Its
parameter space is the plugin's parameter list (``plugins/host.py``), narrowed by a profile
where we have one (``plugins/profiles.py``). Raw values are the plugin's normalised values
(0..1, what a VST3 host stores) for knobs, and option indexes for choices; the panel units
come from the plugin itself (pedalboard samples each parameter's display text).

Presets are ``.vstpreset`` files (``preset_data``). A preset read from a file or a program
keeps that state as its base (``Preset.base_state``, base64): wavetables, samples and
anything else that is not a parameter; parameter values are set on top of it.

Quirks, written down because they cost time to find:

* A parameter set through the host reaches the plugin's processor only with the next
  processed block (VST3 sends parameter changes with ``process``): ZamComp's ``preset_data``
  still held the old threshold after ``raw_value`` was set, and the new one after one block.
  Every change is therefore followed by one silent block before a note or a state is read.
* Renders start from ``reset=True`` (pedalboard resets the plugin: voices, delay lines,
  reverb tails), so a render does not depend on the one before.
* Plugins print (see ``quiet_plugin_output``); every plugin call here is wrapped in it.
"""

from __future__ import annotations

import atexit
import base64
import importlib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PresetError, SynthError
from patchpilot.plugins.host import (
    ParameterInfo,
    PluginHolder,
    describe_parameters,
    load_plugin_by_name_or_path,
    load_state,
    quiet_plugin_output,
    save_state,
)
from patchpilot.plugins.profiles import PluginProfile, profile_for
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, Preset, RenderPool, SynthEngine, USER_ORIGIN, Voice
from patchpilot.synths.params import Param, ParamSpace
from patchpilot.synths.registry import PLUGIN_PREFIX, PLUGIN_PRESET_SUFFIXES

#: Samples per block handed to the plugin (pedalboard's default is 8192; 512 is what DAWs
#: use, so envelopes and LFOs step as they do there).
BUFFER_SIZE = 512
#: The silent block that delivers parameter changes before a note or a state read.
FLUSH_SECONDS = BUFFER_SIZE / NATIVE_SAMPLE_RATE_HZ
#: Name of the parameter through which JUCE and DPF wrappers expose a plugin's programs.
PROGRAM_PARAMETER = "current_program"


def plugin_synth_name(plugin_name: str) -> str:
    """``vst3:`` and the plugin's name in lower case with dashes (``vst3:surge-xt``)."""
    slug = "-".join("".join(ch if ch.isalnum() else " " for ch in plugin_name.lower()).split())
    if not slug:
        raise SynthError(f"plugin name {plugin_name!r} has no letters or digits to name a synth by")
    return PLUGIN_PREFIX + slug


@dataclass(frozen=True)
class PluginSpec:
    """How to load a plugin again, in this process, a worker process or a later run (the
    index records it): a path (with the plugin's name inside a multi-plugin bundle), or a
    ``module:callable`` factory returning an object with pedalboard's plugin interface."""

    synth: str
    path: str = ""
    plugin_name: str | None = None
    factory: str = ""
    profile: str = ""

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> PluginSpec:
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def load(self) -> Any:
        if self.factory:
            module, _, attribute = self.factory.partition(":")
            try:
                return getattr(importlib.import_module(module), attribute)()
            except (ImportError, AttributeError) as error:
                raise SynthError(f"{self.synth}: cannot create the plugin from {self.factory} ({error})") from None
        if not self.path:
            raise SynthError(f"{self.synth}: the index does not say where the plugin is; "
                             "run build-index --plugin PATH again")
        return load_plugin_by_name_or_path(self.path, plugin_name=self.plugin_name, instrument=True)


def encode_state(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_state(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


class VST3Engine(SynthEngine):
    """A VST3 instrument. ``plugin``: an already loaded instance of ``spec`` (saves a load)."""

    preset_suffix = ".vstpreset"
    bank_suffixes = (".vstpreset",)

    def __init__(self, spec: PluginSpec, plugin: Any | None = None) -> None:
        self.spec = spec
        self.name = spec.synth  # type: ignore[misc] - per instance: one engine per plugin
        self._channels = 2
        self._holder = PluginHolder(plugin if plugin is not None else spec.load())
        host = self._holder.plugin
        if not getattr(host, "is_instrument", False):
            raise SynthError(f"{spec.synth}: {getattr(host, 'name', 'the plugin')} is not an instrument")
        self.display_name = str(getattr(host, "name", spec.synth))  # type: ignore[misc]
        self.profile: PluginProfile = profile_for(self.display_name, spec.profile)
        every = describe_parameters(host)
        self.infos: dict[str, ParameterInfo] = {i.name: i for i in every if self.profile.keeps(i)}
        if not self.infos:
            raise SynthError(f"{spec.synth}: the plugin exposes no parameter to match")
        with quiet_plugin_output():
            _flush(host, self)
            # the defaults are the plugin's init patch as loaded (a parameter's own reported
            # default need not be what the patch holds)
            parameters = host.parameters
            current = {name: float(parameters[name].raw_value) for name in self.infos}
        self._params = ParamSpace(_param(info, self.profile, current[info.name]) for info in self.infos.values())
        self.bank_suffixes = (PLUGIN_PRESET_SUFFIXES if self.profile.fxp_patches  # type: ignore[misc]
                              else PLUGIN_PRESET_SUFFIXES[:1])
        self._program = next((i for i in every if i.name == PROGRAM_PARAMETER and i.options), None)
        self._lock = threading.Lock()
        self._trials: RenderPool | None = None
        self.init_state = save_state(host)

    # ---- the SynthEngine interface -------------------------------------------------------
    @property
    def params(self) -> ParamSpace:
        return self._params

    def index_record(self) -> dict | None:
        return self.spec.record()

    def new_voice(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> Voice:
        return VST3Voice(self, sample_rate)

    def render_pool(self, workers: int = 2, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> RenderPool:
        """Builds render plugin presets in worker processes: a plugin that crashes costs the
        preset it was playing, not the build (``synths/isolated.py``)."""
        from patchpilot.synths.isolated import IsolatedRenderPool

        return IsolatedRenderPool(self, workers, sample_rate)

    def normalised(self, name: str, raw: float) -> float:
        """A raw value of ours -> the plugin's normalised value."""
        param, info = self._params[name], self.infos[name]
        if param.kind == "continuous":
            return min(max(float(raw), 0.0), 1.0)
        index = int(param.clip(raw) - param.low)
        return info.grid[index] if index < len(info.grid) else float(raw)

    def raw_from_plugin(self, name: str, normalised: float) -> float:
        param, info = self._params[name], self.infos[name]
        if param.kind == "continuous":
            return float(normalised)
        return float(param.low + info.option_index(normalised))

    def preset_bytes(self, preset: Preset) -> bytes:
        """The ``.vstpreset`` file of a preset: its base state with its values set."""
        with self._lock, quiet_plugin_output():
            host = self._holder.plugin
            apply_preset(self, host, preset, None)
            _flush(host, self)
            return save_state(host)

    def _play_file_native(self, data: bytes, note: int, velocity: int, note_seconds: float,
                          total_seconds: float) -> np.ndarray:
        # A freshly loaded plugin would cost a plugin load per render (Surge XT: about a
        # second); the engine's own instance given the whole file state and reset is the same
        # as far as the file can tell it.
        with self._lock, quiet_plugin_output():
            host = self._holder.plugin
            load_state(host, data)
            _flush(host, self)
            return play_note(self, host, note, velocity, note_seconds, total_seconds)

    def read_presets(self, path: Path) -> list[Preset]:
        """A user's ``.vstpreset`` file (or, for plugins whose patches are ``.fxp`` files, such
        as Surge XT, one of those) as a preset of this plugin. What the plugin loads and plays
        imports: the file is first loaded and played in a worker process (a plugin that
        crashes on it costs one line, not this process); refused are files the plugin
        rejects, crashes on, or plays as silence."""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise PresetError(f"{path}: cannot read ({error.strerror or error})") from None
        origin = f"{USER_ORIGIN}{path.name}"
        try:
            name = path.stem
            if path.suffix.lower() == ".fxp":  # the patch as the plugin's state (read here, played there)
                name, data = self._state_from_fxp(data)
            item = (data, name or path.stem, origin)
            if self.index_record() is None:  # a plugin that cannot be re-created in a worker: tried here
                return [_trial_state(self, self.new_voice(), item)]
            outcome = next(self._trial_pool().map(_trial_in_worker, [item], on_crash=lambda _item, _why: None))
        except PresetError as error:
            raise PresetError(f"{path}: {error}") from None
        if outcome is None:
            raise PresetError(f"{path}: the plugin crashed while loading or playing this preset")
        return [outcome]

    def _trial_pool(self) -> RenderPool:
        """One worker process that tries the user's preset files (started on first use)."""
        with self._lock:
            if self._trials is None:
                from patchpilot.synths.isolated import IsolatedRenderPool

                self._trials = IsolatedRenderPool(self, 1)
                atexit.register(self._trials.close)
            return self._trials

    def _state_from_fxp(self, data: bytes) -> tuple[str, bytes]:
        """An ``.fxp`` patch given to the plugin as its component state; returns the patch's
        name and the plugin's ``.vstpreset`` state with it loaded (``plugins/fxp.py``)."""
        from patchpilot.plugins.fxp import fxp_chunk, with_component_state

        if not self.profile.fxp_patches:
            raise PresetError(f"{self.display_name} presets are .vstpreset files, not .fxp")
        name, chunk = fxp_chunk(data)
        with self._lock, quiet_plugin_output():
            host = self._holder.plugin
            load_state(host, with_component_state(save_state(host, "raw"), chunk), "raw")
            _flush(host, self)  # Surge swaps patches only once a block has been processed
            return name, save_state(host)

    def preset_from_state(self, data: bytes, name: str, *, category: str = "", origin: str = "") -> Preset:
        with self._lock, quiet_plugin_output():
            host = self._holder.plugin
            load_state(host, data)
            _flush(host, self)
            values = self._current_values(host)
        return Preset(self.name, name, values, category=category, origin=origin, base_state=encode_state(data))

    def _current_values(self, host: Any) -> dict[str, float]:
        parameters = host.parameters
        return {name: self._params[name].clip(self.raw_from_plugin(name, float(parameters[name].raw_value)))
                for name in self._params}

    def init_preset(self) -> Preset:
        """The plugin as it loads (its own default patch)."""
        return Preset(self.name, "Init", self.params.defaults(), category="init", origin="init",
                      base_state=encode_state(self.init_state))

    def factory_presets(self) -> list[Preset]:
        """The plugin's own programs where it exposes them (JUCE and DPF wrappers do, as a
        ``current_program`` choice), else its init patch: what the index's variants start from."""
        if self._program is None or len(self._program.options) < 2:
            return [self.init_preset()]
        presets = []
        for index, label in enumerate(self._program.options):
            with self._lock, quiet_plugin_output():
                host = self._holder.plugin
                load_state(host, self.init_state)  # each program from the same start
                host.parameters[PROGRAM_PARAMETER].raw_value = self._program.grid[index]
                _flush(host, self)
                data = save_state(host)
            presets.append(self.preset_from_state(data, label or f"Program {index + 1}", category="program",
                                                  origin="plugin program"))
        return presets


#: A tried preset must reach this peak somewhere in its test notes.
_AUDIBLE_PEAK = 1e-5
#: Test notes of a tried preset: (note, held seconds, total seconds).
_TRIAL_NOTES = ((60, 0.5, 0.6), (60, 2.0, 2.5), (36, 2.0, 2.5), (84, 2.0, 2.5))


def _trial_state(engine: VST3Engine, voice: VST3Voice, item: tuple[bytes, str, str]) -> Preset:
    """A preset's state loaded into ``engine``'s plugin and played on ``voice``: the preset,
    or a :class:`PresetError` where the plugin rejects it or plays only silence (or NaN)."""
    data, name, origin = item
    try:
        return _tried(engine, voice, data, name, origin)
    except (PresetError, SynthError):
        raise
    except Exception as error:  # noqa: BLE001 - whatever the plugin raises on this file is the file's problem
        raise PresetError(f"the plugin failed on this preset ({type(error).__name__}: {error})") from None


def _tried(engine: VST3Engine, voice: VST3Voice, data: bytes, name: str, origin: str) -> Preset:
    preset = engine.preset_from_state(data, name, origin=origin)
    for note, held, total in _TRIAL_NOTES:
        with quiet_plugin_output():
            host = voice._holder.plugin  # noqa: SLF001 - this module's voice
            apply_preset(engine, host, preset, voice)
            _flush(host, engine)
            audio = _call(host, engine, [(bytes([0x90, note, 100]), 0.0), (bytes([0x80, note, 0]), held)], total,
                          reset=True)
        audio = np.asarray(audio, dtype=np.float32)
        if not np.isfinite(audio).all():
            raise PresetError("the preset plays NaN or infinite samples in the plugin (damaged?)")
        if np.abs(audio).max() > _AUDIBLE_PEAK:
            return preset
    raise PresetError("the preset plays silence in the plugin (C2, C4 and C6, held 2 s)")


def _trial_in_worker(voice: Voice, item: tuple[bytes, str, str]) -> Preset:
    """:func:`_trial_state` in an isolated worker, on the worker's engine."""
    assert isinstance(voice, VST3Voice)
    return _trial_state(voice.engine, voice, item)


class VST3Voice(Voice):
    """One plugin instance. Remembers what it last applied so that a render only changes the
    parameters that differ (a plugin with hundreds of parameters would spend longer setting
    them all than rendering)."""

    def __init__(self, engine: VST3Engine, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.engine = engine
        self._holder = PluginHolder(engine.spec.load())
        self.applied: dict[str, float] | None = None
        self.state: str | None = None

    def _render_native_stereo(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                              total_seconds: float) -> np.ndarray:
        with quiet_plugin_output():
            host = self._holder.plugin
            if apply_preset(self.engine, host, preset, self):
                _flush(host, self.engine)
            return play_note(self.engine, host, note, velocity, note_seconds, total_seconds, stereo=True)

    def _render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                       total_seconds: float) -> np.ndarray:
        stereo = self._render_native_stereo(preset, note, velocity, note_seconds, total_seconds)
        return np.ascontiguousarray(stereo.mean(axis=0), dtype=np.float32)


def apply_preset(engine: VST3Engine, host: Any, preset: Preset, voice: VST3Voice | None) -> bool:
    """Put ``preset`` on the plugin: its base state (or the plugin's init state), then every
    value that differs from what ``voice`` applied last. Returns whether anything changed."""
    state = preset.base_state
    changed = False
    previous = None if voice is None else voice.applied
    if voice is not None:
        voice.applied = None  # until this completes: a failure half-way means "reload next time"
    if voice is None or voice.state != (state or "") or previous is None:
        load_state(host, decode_state(state) if state else engine.init_state)
        applied: dict[str, float] = {}
        changed = True
    else:
        applied = previous
    parameters = host.parameters
    values = engine.params.complete(preset.values)
    for name, raw in values.items():
        target = engine.normalised(name, raw)
        if applied.get(name) != target:
            parameters[name].raw_value = target
            applied[name] = target
            changed = True
    if voice is not None:
        voice.applied, voice.state = applied, state or ""
    return changed


def _flush(host: Any, engine: VST3Engine) -> None:
    """One silent block: delivers parameter changes to the plugin's processor."""
    _call(host, engine, [], FLUSH_SECONDS, reset=False)


def play_note(engine: VST3Engine, host: Any, note: int, velocity: int, note_seconds: float,
              total_seconds: float, *, stereo: bool = False) -> np.ndarray:
    """One note from a reset plugin: ``(2, N)`` float32 when ``stereo``, else mono."""
    messages = [(bytes([0x90, int(note), int(velocity)]), 0.0), (bytes([0x80, int(note), 0]), float(note_seconds))]
    audio = _call(host, engine, messages, total_seconds, reset=True)
    frames = int(round(total_seconds * NATIVE_SAMPLE_RATE_HZ))
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[1] < frames:
        audio = np.pad(audio, ((0, 0), (0, frames - audio.shape[1])))
    audio = np.nan_to_num(audio[:, :frames], nan=0.0, posinf=0.0, neginf=0.0)
    if stereo:
        return np.ascontiguousarray(audio if len(audio) == 2 else np.repeat(audio[:1], 2, axis=0))
    return np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32)


def _call(host: Any, engine: VST3Engine, messages: Sequence, seconds: float, *, reset: bool) -> np.ndarray:
    try:
        return host(messages, duration=seconds, sample_rate=NATIVE_SAMPLE_RATE_HZ,
                    num_channels=engine._channels,  # noqa: SLF001 - this module's engine
                    buffer_size=BUFFER_SIZE, reset=reset)
    except ValueError as error:
        # a mono instrument refuses two output channels ("does not support 2-channel output")
        if engine._channels == 2 and "channel" in str(error):  # noqa: SLF001 - this module's engine
            engine._channels = 1  # noqa: SLF001
            return _call(host, engine, messages, seconds, reset=reset)
        raise SynthError(f"{engine.name}: the plugin failed to render ({' '.join(str(error).split())})") from None


def _param(info: ParameterInfo, profile: PluginProfile, current: float) -> Param:
    """Our parameter for a plugin parameter; ``current`` is its normalised value in the
    plugin's init patch (the default)."""
    group = profile.group(info)
    label = info.label if info.label != info.name else ""
    if info.kind == "switch":
        return Param(info.name, "switch", group, 0.0, 1.0, float(info.option_index(current)), description=label)
    if info.kind == "choice":
        return Param(info.name, "choice", group, 0.0, float(len(info.options) - 1),
                     float(info.option_index(current)), options=info.options, description=label)
    invertible = info.invertible
    return Param(info.name, "continuous", group, 0.0, 1.0, min(max(current, 0.0), 1.0),
                 unit=info.unit if invertible else "", musical=profile.musical_range(info),
                 to_native=info.to_value if invertible else (lambda raw: float(raw)),
                 from_native=info.to_normalised if invertible else (lambda value: float(value)),
                 description=label)
