"""Reading an effect chain back from its JSON (``.fx.json``, what ``--export`` writes and
``render --fx`` loads): built-in effects by name, a user's VST3 effects by their plugin file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from patchpilot.errors import UsageError
from patchpilot.fx.chain import EFFECT_KINDS, KINDS_BY_NAME, Effect, EffectKind, FxChain
from patchpilot.fx.plugin import plugin_effect_kind
from patchpilot.plugins.host import PluginLoadError


def chain_from_list(items: Sequence[Mapping], source: str = "the effect chain") -> FxChain:
    """A chain from its JSON form; unknown effects, missing plugins and out-of-range
    settings are one clear error naming ``source``."""
    effects = []
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise UsageError(f"{source}: expected a list of effects")
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("effect"), str):
            raise UsageError(f"{source}: each effect needs an \"effect\" name")
        kind = _kind_of(item, source)
        settings = []
        for control in kind.controls:
            value = item.get(control.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"{source}: {kind.name} {control.name} must be a number")
            settings.append((control.name, float(value)))
        for name, held in kind.fixed.items():  # written out so that plain pedalboard rebuilds it
            if name in item and item[name] != held:
                raise UsageError(f"{source}: {kind.name} {name} is held at {held} in Patch Pilot's chains, "
                                 f"not {item[name]!r}")
        extra = set(item) - {"effect", *kind.source()} - {c.name for c in kind.controls} - set(kind.fixed)
        if extra:
            raise UsageError(f"{source}: {kind.name} has no setting {sorted(extra)[0]!r}")
        effect = Effect(kind, tuple(settings))
        try:
            kind.check(dict(effect.settings))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{source}: {kind.name}: {exc}") from None
        effects.append(effect)
    return FxChain(tuple(effects))


def load_chain(path: Path) -> FxChain:
    """The chain an ``.fx.json`` file holds (``{"fx": [...]}`` or the bare list)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the effect chain ({exc})") from None
    items = data.get("fx") if isinstance(data, Mapping) else data
    return chain_from_list(items if items is not None else [], str(path))


def _kind_of(item: Mapping, source: str) -> EffectKind:
    """The kind an effect's JSON names: a built-in one, or the VST3 plugin at its ``plugin``
    (where that path is missing, as on another machine, a plugin of that file name in the
    VST3 folders)."""
    if "plugin" in item:
        reference = item["plugin"]
        if not isinstance(reference, str):
            raise UsageError(f"{source}: {item['effect']}: \"plugin\" must be the plugin's path or name")
        try:
            if not Path(reference).expanduser().exists() and Path(reference).suffix.lower() == ".vst3":
                reference = Path(reference).stem
            return plugin_effect_kind(reference)
        except PluginLoadError as exc:
            raise UsageError(f"{source}: {exc}") from None
    kind = KINDS_BY_NAME.get(item["effect"].lower())
    if kind is None:
        known = ", ".join(k.name for k in EFFECT_KINDS)
        raise UsageError(f"{source}: unknown effect {item['effect']!r} (known: {known}; a VST3 effect "
                         f"names its file in \"plugin\")")
    return kind
