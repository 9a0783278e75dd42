"""The synth interface: presets, engines, voices and a thread pool that renders with them."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PresetError, SynthError
from patchpilot.synths.params import NativeValue, ParamSpace

if TYPE_CHECKING:
    from patchpilot.fx.chain import FxChain


#: ``Preset.origin`` of a preset read from a user's file: ``user:<file name>[#voice]``.
USER_ORIGIN = "user:"


#: Panel words for the short module names engines use.
_PANEL_WORDS = {"osc": "Oscillator", "op": "Operator", "env": "Envelope", "lfo": "LFO", "filter": "Filter",
                "mod": "Modulation", "eq": "EQ", "pitch": "Pitch envelope", "sample": "Noise / sample"}


@dataclass(frozen=True)
class Preset:
    """A sound on one synth: raw values for every parameter of its space.

    ``base_state`` is synth-specific state the values are applied on top of (for Vital, the
    JSON of an imported ``.vital`` file with its own wavetables); ``None`` means the
    engine's own init template.
    """

    synth: str
    name: str
    values: Mapping[str, float]
    category: str = ""
    tags: tuple[str, ...] = ()
    origin: str = ""
    base_state: str | None = field(default=None, repr=False)

    def with_values(self, values: Mapping[str, float], **changes: object) -> Preset:
        merged = dict(self.values)
        merged.update(values)
        return replace(self, values=merged, **changes)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        """Stable hash of what the preset sounds like (values and base state, not its name)."""
        digest = hashlib.sha1(self.synth.encode())
        digest.update(json.dumps(sorted((k, round(float(v), 6)) for k, v in self.values.items())).encode())
        if self.base_state is not None:
            digest.update(self.base_state.encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RenderRequest:
    """One note to render. ``velocity`` is MIDI 1-127; times are seconds."""

    preset: Preset
    note: int
    velocity: int
    note_seconds: float
    total_seconds: float


#: Every engine renders at this rate. Both synths sound different at 22.05 kHz (Dexed's
#: envelopes, Vital's effects and modulation), and 44.1 kHz is what their users hear;
#: other rates are resampled from it.
NATIVE_SAMPLE_RATE_HZ = 44100


class Voice(ABC):
    """One synth instance. Not thread-safe: give each thread its own."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)

    @abstractmethod
    def _render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                       total_seconds: float) -> np.ndarray:
        """Mono float32 audio at NATIVE_SAMPLE_RATE_HZ."""

    def _render_native_stereo(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                              total_seconds: float) -> np.ndarray:
        """``(2, N)`` float32 at NATIVE_SAMPLE_RATE_HZ; a mono synth plays the same on both sides."""
        mono = self._render_native(preset, note, velocity, note_seconds, total_seconds)
        return np.stack([mono, mono])

    def render(self, preset: Preset, note: int, velocity: int, note_seconds: float, total_seconds: float) -> np.ndarray:
        """Mono float32 audio at the voice's sample rate, ``total_seconds`` long."""
        check_render_args(note, velocity, note_seconds, total_seconds)
        audio = self._render_native(preset, note, velocity, note_seconds, total_seconds)
        return self._at_voice_rate(audio, total_seconds)

    def render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                      total_seconds: float) -> np.ndarray:
        """Mono float32 audio at NATIVE_SAMPLE_RATE_HZ, whatever the voice's rate (for effects,
        which run at the rate the user hears)."""
        check_render_args(note, velocity, note_seconds, total_seconds)
        return self._render_native(preset, note, velocity, note_seconds, total_seconds)

    def render_stereo(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                      total_seconds: float) -> np.ndarray:
        """``(2, N)`` float32 audio at the voice's sample rate (for stereo width)."""
        check_render_args(note, velocity, note_seconds, total_seconds)
        audio = self._render_native_stereo(preset, note, velocity, note_seconds, total_seconds)
        return np.ascontiguousarray(self._at_voice_rate(audio.T, total_seconds).T)

    def _at_voice_rate(self, audio: np.ndarray, total_seconds: float) -> np.ndarray:
        """Resample native-rate audio (time on the first axis) to the voice's rate."""
        return from_native_rate(audio, self.sample_rate, total_seconds)


def from_native_rate(audio: np.ndarray, sample_rate: int, total_seconds: float) -> np.ndarray:
    """Resample audio at NATIVE_SAMPLE_RATE_HZ (time on the first axis) to ``sample_rate``."""
    if sample_rate == NATIVE_SAMPLE_RATE_HZ:
        return audio
    import soxr

    resampled = soxr.resample(audio, NATIVE_SAMPLE_RATE_HZ, sample_rate, quality="HQ")
    return np.ascontiguousarray(resampled[: int(total_seconds * sample_rate)], dtype=np.float32)


class SynthEngine(ABC):
    """A synth Patch Pilot can render, match and export presets for."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    preset_suffix: ClassVar[str]
    #: File suffixes of user banks this engine imports.
    bank_suffixes: ClassVar[tuple[str, ...]]
    #: The re-ranker hears at least this many of the synth's presets nearest an input, on
    #: top of the shared candidates: more for synths whose renders cost little.
    min_rerank_candidates: ClassVar[int] = 0
    #: Choices whose every option refinement tries where their module sounds:
    #: ``(choice, switch that must be on, or None)`` each.
    swept_choices: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    #: Choices a library variant may swap (``library/sampler.py``), and switches it may flip.
    variant_choices: ClassVar[tuple[str, ...]] = ()
    variant_switches: ClassVar[tuple[str, ...]] = ()

    def module_of(self, name: str) -> str:
        """The module a parameter belongs to (``osc_1``, ``filter_fx``, ``op3``, ``chorus``):
        the unit whose choices refinement swaps together."""
        parts = name.split("_")
        if len(parts) > 1 and (parts[1].isdigit() or parts[1] == "fx"):
            return "_".join(parts[:2])
        return parts[0]

    def panel_name(self, module: str) -> str:
        """A module (``module_of``) as the synth's panel names it: ``osc_1`` -> Oscillator 1,
        ``op3`` -> Operator 3, ``filter_fx`` -> FX filter."""
        head, _, rest = module.partition("_")
        digits = head.lstrip("abcdefghijklmnopqrstuvwxyz")
        head = head[: len(head) - len(digits)] if digits else head
        word = _PANEL_WORDS.get(head, head.replace("_", " ").capitalize())
        if rest == "fx":
            return f"FX {word.lower()}"
        return " ".join(part for part in (word, digits, rest.replace("_", " ")) if part)

    def drawing(self, module: str, values: Mapping[str, NativeValue]) -> dict | None:
        """What a card can draw of a module at these panel values (an envelope's shape, a
        filter's response), or None."""
        return None

    @property
    @abstractmethod
    def params(self) -> ParamSpace:
        """Every parameter the matcher may change."""

    @abstractmethod
    def new_voice(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> Voice:
        """A fresh synth instance."""

    @abstractmethod
    def preset_bytes(self, preset: Preset) -> bytes:
        """The content of the native preset file the real synth loads."""

    def preset_bytes_with_fx(self, preset: Preset, chain: FxChain) -> tuple[bytes, tuple[str, ...]] | None:
        """The native preset file with an effect chain set in the synth's own effects where
        it has equivalents, and the effects left out (``"<Effect>: <why>"``); None for a
        synth without effects of its own."""
        return None

    def write_preset(self, preset: Preset, path: Path) -> None:
        """Write a native preset file the real synth loads."""
        path.write_bytes(self.preset_bytes(preset))

    @abstractmethod
    def _play_file_native(self, data: bytes, note: int, velocity: int, note_seconds: float,
                          total_seconds: float) -> np.ndarray:
        """Load a preset file's bytes in a fresh synth instance, as a user does, and play one
        note on it: mono float32 at NATIVE_SAMPLE_RATE_HZ."""

    @abstractmethod
    def read_presets(self, path: Path) -> list[Preset]:
        """Presets from a native file (a ``.vital`` preset, a DX7 ``.syx`` bank or voice)."""

    def index_record(self) -> dict | None:
        """What an index keeps to create this engine again in a later run or another process
        (a plugin's path); None for the built-in synths, which need nothing."""
        return None

    def render_pool(self, workers: int = 2, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> RenderPool:
        """The pool a build renders with (a plugin engine isolates its voices in processes)."""
        return RenderPool(self, workers, sample_rate)

    def velocity_sensitive(self, preset: Preset) -> bool:
        """Whether the preset's sound changes with velocity (beyond loudness)."""
        return False

    def sets_pitch(self, name: str) -> bool:
        """Whether a parameter sets or modulates the pitch (an oscillator's transpose and
        tune, a modulation into them). Refinement leaves these where the match put them."""
        return name.endswith(("_transpose", "_tune"))

    def audible_params(self, preset: Preset) -> list[str]:
        """Continuous parameters that change this preset's sound (those of switched-off
        modules do not). The sampler and the optimiser only move these."""
        return self.params.names("continuous")

    def init_preset(self) -> Preset:
        return Preset(self.name, "Init", self.params.defaults(), category="init", origin="init")

    def make_preset(
        self,
        name: str,
        natives: Mapping[str, object],
        *,
        category: str = "",
        tags: Iterable[str] = (),
        origin: str = "",
    ) -> Preset:
        """A preset from native values (panel units/labels) over the init patch."""
        values = self.params.complete(self.params.parse_native(natives))
        return Preset(self.name, name, values, category=category, tags=tuple(tags), origin=origin)

    def native_values(self, preset: Preset) -> dict[str, NativeValue]:
        return self.params.to_native(preset.values)

    def render(
        self,
        preset: Preset,
        note: int,
        velocity: int,
        note_seconds: float,
        total_seconds: float,
        sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ,
    ) -> np.ndarray:
        """What a user hears: the preset's exported file loaded in a fresh synth instance and
        one note played on it. This reference render is reproducible; exported WAVs and the
        distances a match reports are made of it."""
        return self.play_file(self.preset_bytes(preset), note, velocity, note_seconds, total_seconds, sample_rate)

    def play_file(self, data: bytes, note: int, velocity: int, note_seconds: float, total_seconds: float,
                  sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> np.ndarray:
        """A preset file's bytes loaded in a fresh instance and one note played: mono float32."""
        check_render_args(note, velocity, note_seconds, total_seconds)
        audio = self._play_file_native(data, note, velocity, note_seconds, total_seconds)
        return from_native_rate(np.asarray(audio, dtype=np.float32), sample_rate, total_seconds)


#: Larger preset files are not presets (Vital presets with sampled wavetables are a few MB).
MAX_PRESET_FILE_BYTES = 64_000_000


def read_preset_bytes(path: Path) -> bytes:
    """A preset file's bytes, or a :class:`PresetError` naming the file: missing, a folder,
    unreadable, empty or too large to be a preset."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise PresetError(f"{path}: is a folder, not a preset file")
        if size > MAX_PRESET_FILE_BYTES:
            raise PresetError(f"{path}: {size} bytes is too large for a preset file")
        data = path.read_bytes()
    except OSError as exc:
        raise PresetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise PresetError(f"{path}: the file is empty")
    return data


def check_render_args(note: int, velocity: int, note_seconds: float, total_seconds: float) -> None:
    if not 0 <= int(note) <= 127:
        raise SynthError(f"MIDI note {note} is outside 0-127")
    if not 1 <= int(velocity) <= 127:
        raise SynthError(f"velocity {velocity} is outside 1-127")
    if not 0 < note_seconds <= total_seconds:
        raise SynthError(f"note length {note_seconds:.3f} s must be positive and within the render ({total_seconds:.3f} s)")


def play_request(voice: Voice, request: RenderRequest) -> np.ndarray:
    """One request rendered on a voice."""
    return voice.render(request.preset, request.note, request.velocity, request.note_seconds, request.total_seconds)


def play_request_native(voice: Voice, request: RenderRequest) -> np.ndarray:
    """One request rendered on a voice, at the native rate."""
    return voice.render_native(request.preset, request.note, request.velocity, request.note_seconds,
                               request.total_seconds)


class RenderPool:
    """Renders batches of notes on a few threads, each with its own voice.

    Both engines release the GIL while rendering, so threads scale with free cores.
    A pool reuses its voices: renders are not bit-identical to a fresh instance for
    effects with free-running LFOs (Vital's chorus, flanger, reverb), which the
    perceptual features tolerate. Use :meth:`SynthEngine.render` for exact renders.
    Request ``i`` of a batch always goes to voice ``i % workers``, so that after
    :meth:`reset` the same batches give the same audio whatever the threads' timing.
    A pool serves one caller at a time (the matcher's work is serialised).
    """

    #: Functions given to :meth:`map` run in this process (threads), so they may hold what
    #: does not pickle (a loaded effect plugin); pools of worker processes or actors say False.
    in_process: ClassVar[bool] = True

    def __init__(self, engine: SynthEngine, workers: int = 2, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> None:
        self.engine = engine
        self.sample_rate = sample_rate
        self.workers = max(1, int(workers))
        self._voices: list[Voice | None] = [None] * self.workers
        # one thread per voice, so that each voice plays its share in order
        self._executors = [ThreadPoolExecutor(1, thread_name_prefix=f"render-{engine.name}-{worker}")
                           for worker in range(self.workers)] if self.workers > 1 else []

    def _voice(self, worker: int) -> Voice:
        voice = self._voices[worker]
        if voice is None:
            voice = self._voices[worker] = self.engine.new_voice(self.sample_rate)
        return voice

    def reset(self) -> None:
        """Start the next batches on fresh voices, so that what they play does not depend on
        what the pool played before (an earlier query's presets)."""
        self._voices = [None] * self.workers

    def imap(self, requests: Iterable[RenderRequest]) -> Iterator[np.ndarray]:
        """Render in order, yielding each result as soon as it and those before it are done."""
        yield from self.map(play_request, requests)

    def render(self, requests: Sequence[RenderRequest]) -> list[np.ndarray]:
        return list(self.imap(requests))

    def map(self, function: Callable[[Voice, Any], Any], items: Iterable,
            on_crash: Callable[[Any, str], Any] | None = None) -> Iterator:
        """Run ``function(voice, item)`` for each item on the pool's threads, in order.
        ``on_crash`` is for pools that outlive a crashing synth (``isolated.py``); a thread
        cannot, so it is not used here."""
        if not self._executors:
            yield from (function(self._voice(0), item) for item in items)
            return
        window: list = []
        try:
            for position, item in enumerate(items):
                worker = position % self.workers
                window.append(self._executors[worker].submit(lambda w=worker, x=item: function(self._voice(w), x)))
                if len(window) >= 4 * self.workers:
                    yield window.pop(0).result()
            while window:
                yield window.pop(0).result()
        finally:  # a batch given up (an error, a consumer that stopped) leaves nothing queued
            for future in window:
                future.cancel()
            for future in window:
                if not future.cancelled():
                    future.exception()  # wait for it: the next batch must start after it

    def close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=True)
        self._executors = []

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
