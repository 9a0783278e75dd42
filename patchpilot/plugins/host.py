"""The plugin-hosting layer: find a VST3 plugin by path or name, load it through pedalboard
with one clear error line, describe its parameters in its own names and units, save and
restore its state, and keep what it prints off our stdout/stderr.

Plugins write to the process's file descriptors 1 and 2 directly (C ``printf``, JUCE and
DPF loggers): ZamVerb prints "convolution: samplerate mismatch" on every block, DPF plugins
print "asked to delete component..." when they are freed. Python-level redirection cannot
catch that, so :func:`quiet_plugin_output` points the descriptors themselves at a temporary
file for the length of a plugin call and logs what was caught at DEBUG level (logger
``patchpilot.plugins``). Every call into a plugin here goes through it, so ``--json`` keeps a
clean stdout.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from patchpilot.errors import PresetError, SynthError

log = logging.getLogger("patchpilot.plugins")

PLUGIN_SUFFIX = ".vst3"
#: Extra folders searched for plugins by name before the standard ones (os.pathsep-separated).
PLUGIN_PATH_ENV = "PATCHPILOT_VST3_PATH"
#: Seconds pedalboard waits for a plugin to finish initialising (some synths load samples).
DEFAULT_INIT_TIMEOUT_SECONDS = 10.0
#: The header every ``.vstpreset`` file starts with. Bad state "may crash the plugin, taking
#: the entire Python process down with it" (pedalboard's docs), so we check before handing it over.
VSTPRESET_MAGIC = b"VST3"
#: Numeric parameters with at most this many values are choices, not continuous knobs.
MAX_CHOICE_VALUES = 64

ParamKindName = Literal["continuous", "choice", "switch"]


class PluginLoadError(SynthError):
    """A plugin could not be found or loaded, or is not the kind of plugin asked for."""


# ---- finding ---------------------------------------------------------------------------------
def vst3_folders() -> list[Path]:
    """Where plugins are looked for by name: ``$PATCHPILOT_VST3_PATH``, then the standard
    VST3 folders of this platform (per-user first)."""
    extra = [Path(p).expanduser() for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    home = Path.home()
    if sys.platform == "darwin":
        standard = [home / "Library/Audio/Plug-Ins/VST3", Path("/Library/Audio/Plug-Ins/VST3")]
    elif sys.platform.startswith("win"):
        common = Path(os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files"))
        local = Path(os.environ.get("LOCALAPPDATA", str(home / "AppData/Local")))
        standard = [local / "Programs/Common/VST3", common / "VST3"]
    else:
        standard = [home / ".vst3", Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3")]
    return extra + standard


def installed_plugins(folders: Sequence[Path] | None = None) -> list[Path]:
    """Every ``.vst3`` bundle (or file) in the folders and their subfolders, sorted by name."""
    found: dict[str, Path] = {}
    for folder in folders if folders is not None else vst3_folders():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob(f"*{PLUGIN_SUFFIX}")):
            # a bundle's own Contents/ never holds another plugin worth listing
            if any(parent.suffix.lower() == PLUGIN_SUFFIX for parent in path.parents):
                continue
            found.setdefault(path.name.lower(), path)
    return sorted(found.values(), key=lambda p: p.stem.lower())


def might_be_instrument(path: Path) -> bool:
    """Whether a plugin may be an instrument, without loading it (some load slowly: ZamVerb
    took 85 s here). A VST3 class declares its kind in sub-category strings ("Instrument|Synth",
    "Fx|Reverb"): the bundle's ``moduleinfo.json`` lists them where the SDK wrote one, else
    the binary holds them as text. No "Instrument" anywhere means an effect; a hit is only a
    maybe (load it to know)."""
    if path.is_file():
        binaries = [path]
    else:
        info = path / "Contents" / "Resources" / "moduleinfo.json"
        if info.is_file():
            return b"Instrument" in info.read_bytes()
        binaries = [p for p in (path / "Contents").rglob("*") if p.is_file()]
    for binary in binaries:
        with open(binary, "rb") as handle:
            tail = b""
            while chunk := handle.read(1 << 20):
                if b"Instrument" in tail + chunk:
                    return True
                tail = chunk[-16:]
    return False


def _name_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def find_plugin(reference: str | Path) -> Path:
    """A plugin file from a path, or from a name (``Surge XT``, ``surge-xt``, ``ZamComp``)
    searched in :func:`vst3_folders` (case, spaces and punctuation ignored)."""
    path = Path(reference).expanduser()
    if path.exists():
        return path
    text = str(reference)
    if os.sep in text or "/" in text or text.lower().endswith(PLUGIN_SUFFIX):
        raise PluginLoadError(f"{text}: no such plugin file")
    key = _name_key(text)
    folders = vst3_folders()
    candidates = installed_plugins(folders)
    for candidate in candidates:
        if _name_key(candidate.stem) == key:
            return candidate
    searched = ", ".join(str(f) for f in folders)
    near = [c.stem for c in candidates if key and key in _name_key(c.stem)]
    hint = f"; similar: {', '.join(near[:5])}" if near else ""
    raise PluginLoadError(f"no VST3 plugin named {text!r} in {searched} (give its path instead){hint}")


# ---- keeping plugin output off our streams ---------------------------------------------------
_quiet_lock = threading.RLock()
_quiet_depth = 0
_saved_fds: tuple[int, int] | None = None
_capture: Any = None


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers: a plugin's ``printf`` into a pipe sits there and
    would come out on our stdout after the descriptors are restored."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc symbol table (Windows): nothing to flush that way
        pass


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def quiet_plugin_output() -> Iterator[None]:
    """Send everything written to file descriptors 1 and 2 inside the block to the debug log.

    Process-wide and re-entrant: render threads share one redirection, which is undone
    when the last of them leaves. Our own output is only written outside plugin calls (the
    table or JSON after the matching), so nothing of ours is lost; flushing first keeps
    what was written before the block in its place. One capture file serves every block
    (rewound each time): a block costs a few system calls, not a new file."""
    global _quiet_depth, _saved_fds, _capture
    with _quiet_lock:
        if _quiet_depth == 0:
            _flush_python_streams()
            _flush_c_stdio()
            if _capture is None:
                _capture = tempfile.TemporaryFile()
            _saved_fds = (os.dup(1), os.dup(2))
            os.dup2(_capture.fileno(), 1)
            os.dup2(_capture.fileno(), 2)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_fds is not None:
                _flush_c_stdio()
                out, err = _saved_fds
                os.dup2(out, 1)
                os.dup2(err, 2)
                os.close(out)
                os.close(err)
                _saved_fds = None
                _log_captured(_capture.fileno())


def _log_captured(fd: int) -> None:
    """Log what the plugins wrote into the capture file, then empty it."""
    size = os.lseek(fd, 0, os.SEEK_CUR)  # the descriptors shared its offset: this is how much came
    if size <= 0:
        return
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, min(size, 1 << 16)).decode("utf-8", "replace").strip()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    if text:
        log.debug("plugin output: %s", text)


# ---- loading ---------------------------------------------------------------------------------
#: Holders of live plugins, closed (quietly) at exit: DPF and JUCE plugins print when freed,
#: which would otherwise happen during interpreter shutdown, straight onto our stderr.
_LIVE: weakref.WeakSet = weakref.WeakSet()


class PluginHolder:
    """Owns one loaded plugin so that it is freed inside :func:`quiet_plugin_output`."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin
        _LIVE.add(self)

    def close(self) -> None:
        if self.plugin is not None:
            with quiet_plugin_output():
                self.plugin = None
                import gc

                gc.collect()


#: Whether this process has loaded a plugin (then its exit is kept quiet too).
_loaded_any = False


@atexit.register
def _close_all() -> None:
    """At exit: free the held plugins quietly, then keep the descriptors pointed away for
    the rest of the shutdown, where plugins still referenced elsewhere are freed (and print).
    Our own output is complete by now; only a process that loaded a plugin does this."""
    for holder in list(_LIVE):
        holder.close()
    if _loaded_any:
        _flush_python_streams()
        _flush_c_stdio()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)


def load_plugin_by_name_or_path(reference: str | Path, *, plugin_name: str | None = None,
                                instrument: bool | None = None,
                                timeout_seconds: float = DEFAULT_INIT_TIMEOUT_SECONDS) -> Any:
    """Load a VST3 plugin (a ``pedalboard.VST3Plugin``) by path or name.

    ``instrument``: True to require an instrument, False an effect, None either. Every
    failure is one :class:`PluginLoadError` line: pedalboard tries each plugin format and
    lists each one's complaint over several lines, which we join."""
    global _loaded_any
    path = find_plugin(reference)
    try:
        import pedalboard
    except ImportError as error:  # pragma: no cover - a core dependency
        raise PluginLoadError(f"pedalboard is not installed ({error})") from None
    _loaded_any = True
    with quiet_plugin_output():
        try:
            plugin = pedalboard.load_plugin(str(path), plugin_name=plugin_name,
                                            initialization_timeout=timeout_seconds)
        except (ImportError, RuntimeError, ValueError, OSError) as error:
            reasons = " ".join(str(error).split())
            raise PluginLoadError(f"cannot load plugin {path}: {reasons}") from None
    kind = "an instrument" if plugin.is_instrument else "an effect"
    if instrument is True and not plugin.is_instrument:
        PluginHolder(plugin).close()
        raise PluginLoadError(f"{plugin.name} ({path}) is {kind}, not an instrument: it cannot play notes")
    if instrument is False and not plugin.is_effect:
        PluginHolder(plugin).close()
        raise PluginLoadError(f"{plugin.name} ({path}) is {kind}, not an effect")
    return plugin


# ---- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterInfo:
    """One plugin parameter as its panel shows it.

    ``name`` is pedalboard's Python name (``cutoff_hz``), ``label`` the plugin's own name
    (``Cutoff``). Values are the plugin's *normalised* values (0..1, what VST3 hosts store)
    and ``values`` what the panel shows at each point of ``grid``; ``to_value``/``to_normalised``
    convert between them. Choices list their labels in ``options`` with the normalised value
    of each in ``grid``."""

    name: str
    label: str
    kind: ParamKindName
    unit: str
    minimum: float | None
    maximum: float | None
    default: float
    options: tuple[str, ...] = ()
    grid: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    @property
    def is_boolean(self) -> bool:
        return self.kind == "switch"

    def to_value(self, normalised: float) -> float:
        """Normalised value -> the number the panel shows (continuous parameters)."""
        if len(self.grid) < 2:
            return float(normalised)
        return float(np.interp(normalised, self.grid, self.values))

    @property
    def invertible(self) -> bool:
        steps = np.diff(np.asarray(self.values, dtype=np.float64))
        return len(self.values) >= 2 and bool((steps > 0).all() or (steps < 0).all())

    def to_normalised(self, value: float) -> float:
        """The panel's number -> normalised value (identity when the mapping is not monotonic)."""
        if not self.invertible:
            return float(value)
        grid, values = np.asarray(self.grid), np.asarray(self.values)
        if values[0] > values[-1]:
            grid, values = grid[::-1], values[::-1]
        return float(np.interp(value, values, grid))

    def option_index(self, normalised: float) -> int:
        """The choice nearest to a normalised value."""
        return int(np.argmin(np.abs(np.asarray(self.grid) - normalised))) if self.grid else 0


def describe_parameters(plugin: Any) -> list[ParameterInfo]:
    """Every parameter of a loaded plugin: name, range, unit, discrete values, booleans."""
    with quiet_plugin_output():
        parameters = plugin.parameters
        return [_describe(name, parameter) for name, parameter in parameters.items()]


def _describe(name: str, parameter: Any) -> ParameterInfo:
    label = str(getattr(parameter, "name", name))
    unit = (getattr(parameter, "units", None) or getattr(parameter, "label", None) or "").strip()
    default = float(getattr(parameter, "default_raw_value", getattr(parameter, "raw_value", 0.0)))
    ranges = list(getattr(parameter, "ranges", {}).items())
    kind_type = getattr(parameter, "type", float)
    if getattr(parameter, "is_boolean", False) or kind_type is bool:
        return ParameterInfo(name, label, "switch", unit, 0.0, 1.0, 1.0 if default >= 0.5 else 0.0,
                             options=("Off", "On"), grid=(0.0, 1.0), values=(0.0, 1.0))
    if ranges and (kind_type is str or len(ranges) <= MAX_CHOICE_VALUES):
        labels = tuple(_label(value) for _, value in ranges)
        grid = tuple(_choice_point(lo, hi, i, len(ranges)) for i, ((lo, hi), _) in enumerate(ranges))
        if kind_type is not str and len(ranges) == 2 and labels in (("0", "1"), ("0.0", "1.0")):
            return ParameterInfo(name, label, "switch", unit, 0.0, 1.0, 1.0 if default >= 0.5 else 0.0,
                                 options=("Off", "On"), grid=grid, values=(0.0, 1.0))
        return ParameterInfo(name, label, "choice", unit, None, None, default, options=labels, grid=grid)
    grid = tuple((lo + hi) / 2 for (lo, hi), _ in ranges)
    values = tuple(float(value) for _, value in ranges)
    minimum = getattr(parameter, "min_value", None)
    maximum = getattr(parameter, "max_value", None)
    return ParameterInfo(name, label, "continuous", unit,
                         float(minimum) if minimum is not None else (min(values) if values else 0.0),
                         float(maximum) if maximum is not None else (max(values) if values else 1.0),
                         default, grid=grid, values=values)


def _choice_point(lo: float, hi: float, index: int, count: int) -> float:
    # VST3 discrete parameters are read as round(normalised * (steps - 1)); index/(count-1)
    # is the exact value of a step and lies inside the range pedalboard sampled for it.
    exact = index / (count - 1) if count > 1 else 0.0
    return exact if lo <= exact <= hi else (lo + hi) / 2


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---- state -----------------------------------------------------------------------------------
def save_state(plugin: Any, kind: Literal["preset", "raw"] = "preset") -> bytes:
    """The plugin's state: a ``.vstpreset`` file's bytes, or its raw component state."""
    with quiet_plugin_output():
        return bytes(plugin.preset_data if kind == "preset" else plugin.raw_state)


def load_state(plugin: Any, data: bytes, kind: Literal["preset", "raw"] = "preset") -> None:
    """Give the plugin a state saved by :func:`save_state` (or a user's ``.vstpreset``)."""
    if kind == "preset" and not data.startswith(VSTPRESET_MAGIC):
        raise PresetError("not a .vstpreset file (it does not start with 'VST3')")
    with quiet_plugin_output():
        try:
            if kind == "preset":
                plugin.preset_data = data
            else:
                plugin.raw_state = data
        except (RuntimeError, ValueError) as error:
            raise PresetError(f"the plugin rejected the preset: {' '.join(str(error).split())}") from None
