"""An answer's effect chain set in Vital's own effects, so that one ``.vital`` file plays it.

The chain (``fx/chain.py``) is pedalboard's effects; Vital has its own of most kinds. Each
is translated to Vital's nearest settings where Vital has an equivalent and the preset leaves
that effect free: they sound alike, not the same (Vital's reverb is not Freeverb, its EQ
filters are 12 dB/octave where pedalboard's are 6), and they
run in Vital's effect order, not the chain's. The ``.fx.json`` beside the export remains the
exact chain; what could not be placed is named.

| pedalboard | Vital |
|---|---|
| Distortion | Distortion, Soft Clip, the same drive |
| HighpassFilter / LowpassFilter | EQ low band in High Pass mode / high band in Low Pass mode |
| Delay | Delay in seconds, mono |
| Reverb | Reverb: size from the room size, decay 0.3-6 s across it, damping as a high shelf |
| Compressor | none (Vital's is a multiband upward/downward compressor) |
| Chorus | none (Vital's, four voices at least, sounded further from it than no chorus) |
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the chain is passed in: no import of the effects package from the synths
    from patchpilot.fx.chain import Effect, FxChain

#: The Vital effect each pedalboard effect takes (``<name>_on``), where one is close enough.
VITAL_EFFECT = {"Distortion": "distortion", "HighpassFilter": "eq", "LowpassFilter": "eq", "Delay": "delay",
                "Reverb": "reverb"}
#: Why the others are left out. Measured on 70 random presets and settings (MR-STFT to the
#: preset through pedalboard's effect, the protocol of BENCHMARKS.md, "Effects inside a .vital file"),
#: the file came closer than the dry preset for every effect above, but Vital's chorus (four
#: voices at least) ended further from pedalboard's than no chorus at all (0.75 against 0.56).
NO_EQUIVALENT = {"Compressor": "Vital's compressor is a multiband one, not an equivalent",
                 "Chorus": "Vital's chorus sounds further from it than none"}
#: Reverb decay (seconds) at the smallest and the largest room size.
REVERB_DECAY_SECONDS = (0.3, 6.0)


def _note(hz: float) -> float:
    """Vital's cutoff controls are MIDI notes."""
    return float(min(max(69.0 + 12.0 * math.log2(max(hz, 1e-3) / 440.0), 8.0), 136.0))


def _settings(effect: Effect) -> dict[str, float]:
    return {**effect.spec.fixed, **dict(effect.settings)}


def _vital_controls(effect: Effect, taken: set[str]) -> dict[str, float]:
    """Vital's raw control values for one effect (``taken``: EQ bands already set)."""
    s = _settings(effect)
    if effect.kind == "Distortion":
        return {"distortion_on": 1.0, "distortion_type": 0.0, "distortion_drive": min(max(s["drive_db"], -30.0), 30.0),
                "distortion_mix": 1.0, "distortion_filter_order": 0.0}
    if effect.kind in ("HighpassFilter", "LowpassFilter"):
        band = "low" if effect.kind == "HighpassFilter" else "high"
        controls = {"eq_on": 1.0, f"eq_{band}_mode": 1.0, f"eq_{band}_cutoff": _note(s["cutoff_frequency_hz"]),
                    f"eq_{band}_resonance": 0.0, f"eq_{band}_gain": 0.0}
        if "eq" not in taken:  # the EQ's other bands stay flat
            controls["eq_band_gain"] = 0.0
            other = "high" if band == "low" else "low"
            controls.update({f"eq_{other}_mode": 0.0, f"eq_{other}_gain": 0.0})
        return controls
    if effect.kind == "Delay":
        return {"delay_on": 1.0, "delay_sync": 0.0, "delay_frequency": -math.log2(s["delay_seconds"]),
                "delay_feedback": s["feedback"], "delay_dry_wet": s["mix"], "delay_style": 0.0}
    if effect.kind == "Reverb":
        low, high = REVERB_DECAY_SECONDS
        decay = low * (high / low) ** s["room_size"]
        wet = s["wet_level"] / (s["wet_level"] + s["dry_level"])
        return {"reverb_on": 1.0, "reverb_size": s["room_size"], "reverb_decay_time": math.log2(decay),
                "reverb_high_shelf_gain": -6.0 * s["damping"], "reverb_dry_wet": wet}
    raise KeyError(effect.kind)


def with_chain(text: str, chain: FxChain) -> tuple[str, tuple[str, ...]]:
    """A Vital preset's JSON with the chain's effects set in Vital's own, and the effects
    left out, each as ``"<Effect>: <why>"``."""
    document: dict[str, Any] = json.loads(text)
    settings = document["settings"]
    busy = {name for name in set(VITAL_EFFECT.values()) if float(settings.get(f"{name}_on", 0.0)) >= 0.5}
    taken: set[str] = set()
    left_out: list[str] = []
    for effect in chain.effects:
        target = None if effect.spec.source() else VITAL_EFFECT.get(effect.kind)
        if effect.spec.source():  # a user's VST3 effect, whatever its name
            left_out.append(f"{effect.kind}: a VST3 effect, to load after Vital (its .vstpreset)")
        elif target is None:
            left_out.append(f"{effect.kind}: {NO_EQUIVALENT.get(effect.kind, 'Vital has no equivalent')}")
        elif target in busy:
            left_out.append(f"{effect.kind}: the preset already uses Vital's {target}")
        elif target in taken and target != "eq":
            left_out.append(f"{effect.kind}: Vital has one {target}")
        else:
            settings.update(_vital_controls(effect, taken))
            taken.add(target)
    return json.dumps(document), tuple(left_out)
