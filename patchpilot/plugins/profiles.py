"""Per-plugin profiles: which of a plugin's parameters are matched, in which display group,
and within which musical range. A plugin without a profile gets the generic one: every
parameter except host plumbing (bypass, programs, MIDI CC stand-ins, meters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from patchpilot.plugins.host import ParameterInfo

#: Parameters no profile matches: host plumbing and read-only meters. JUCE's VST3 wrapper
#: adds "MIDI CC n|m" parameters (thousands of them), DPF plugins "Buffer Size" and
#: "Sample Rate", and many plugins a bypass and the program list (read separately, as presets).
NEVER = re.compile(r"^(bypass|.*_bypass|current_program|program|midi_cc_.*|buffer_size.*|sample_rate.*"
                   r"|gain_reduction.*|.*_meter.*|.*_level_meter|latency.*)$")

#: Keyword -> display group, for plugins without a profile (first match wins).
GROUP_WORDS = (
    ("envelope", ("attack", "decay", "sustain", "release", "_eg_", "env", "hold")),
    ("filter", ("filter", "cutoff", "resonance", "reso", "highpass", "lowpass", "keytrack")),
    ("modulation", ("lfo", "mod", "vibrato", "rate", "depth")),
    ("fx", ("reverb", "delay", "chorus", "phaser", "flanger", "distortion", "drive", "fx", "wet", "dry", "room")),
    ("oscillator", ("osc", "wave", "pitch", "tune", "detune", "unison", "noise", "shape", "pulse", "saw", "sub")),
)


@dataclass(frozen=True)
class PluginProfile:
    """What to match of one plugin. ``patterns`` are regular expressions over pedalboard's
    parameter names (``a_osc_1_pitch``) with their group; none means every parameter.
    ``musical`` narrows a parameter's normalised search range (where the sampler and the
    optimiser go)."""

    name: str
    #: Lower-case plugin names (pedalboard's ``plugin.name``) the profile is for.
    plugin_names: tuple[str, ...] = ()
    patterns: tuple[tuple[str, str], ...] = ()
    musical: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Whether the plugin's own patches are VST2 ``.fxp`` files whose chunk is its VST3
    #: component state (``plugins/fxp.py``): then ``--presets`` reads them too.
    fxp_patches: bool = False
    #: What this plugin needs headless (shown in the docs).
    note: str = ""

    def keeps(self, info: ParameterInfo) -> bool:
        if NEVER.match(info.name):
            return False
        return not self.patterns or any(re.match(p, info.name) for p, _ in self.patterns)

    def group(self, info: ParameterInfo) -> str:
        for pattern, group in self.patterns:
            if re.match(pattern, info.name):
                return group
        return guess_group(info.name)

    def musical_range(self, info: ParameterInfo) -> tuple[float, float] | None:
        for pattern, span in self.musical.items():
            if re.match(pattern, info.name):
                return span
        return None


def guess_group(name: str) -> str:
    lowered = f"_{name.lower()}_"
    for group, words in GROUP_WORDS:
        if any(word in lowered for word in words):
            return group
    return "global"


GENERIC = PluginProfile("generic")

#: Surge XT (https://surge-synthesizer.github.io). Scene A only: a single-scene patch is what
#: Surge starts with and what most factory patches use; scene B doubles the space for
#: layered patches we do not try to match. Names are pedalboard's Python names of Surge XT's
#: parameter names ("A Osc 1 Pitch" -> ``a_osc_1_pitch``). Surge renames an oscillator's
#: type-specific controls when its type changes (Classic: Shape, Width 1, Width 2, Sub Mix;
#: Modern: Sawtooth, Pulse, Triangle, ...), hence the per-oscillator patterns.
#: UNVERIFIED here: no Surge XT build can be installed on this machine; the names come from
#: Surge XT's documentation and from public code that drives Surge XT through pedalboard.
SURGE_XT = PluginProfile(
    "surge-xt",
    plugin_names=("surge xt", "surge"),
    patterns=(
        (r"^a_osc_[123]_", "oscillator"),
        (r"^a_(noise|ring_modulation_1x2|ring_modulation_2x3)_(volume|color|mute)$", "oscillator"),
        (r"^a_(osc_drift|fm_routing|fm_depth|feedback|pre_filter_gain)$", "oscillator"),
        (r"^a_filter_[12]_", "filter"),
        (r"^a_(filter_configuration|filter_balance|highpass|waveshaper_type|waveshaper_drive)$", "filter"),
        (r"^a_(amp|filter)_eg_", "envelope"),
        (r"^a_lfo_[1-6]_", "modulation"),
        (r"^fx_a[1-4]_", "fx"),
        (r"^(a_volume|a_width|character)$", "global"),
    ),
    musical={
        # envelope times: Surge's normalised 0.77 is about 4 s; longer ones are pads' tails
        r"^a_(amp|filter)_eg_(attack|decay|release)$": (0.0, 0.77),
        # keep the oscillators near their written pitch: the index plays every note
        r"^a_osc_[123]_pitch$": (0.4, 0.6),
    },
    fxp_patches=True,
    note="Headless Surge XT: parameters are set one by one (not only through the state), "
         "which is the path that does not depend on its editor having been shown.",
)

PROFILES = (SURGE_XT,)


def profile_for(plugin_name: str, requested: str = "") -> PluginProfile:
    """The profile named ``requested``, else the one for this plugin name, else the generic one."""
    for profile in PROFILES:
        if requested and profile.name == requested:
            return profile
    key = plugin_name.strip().lower()
    for profile in PROFILES:
        if key in profile.plugin_names:
            return profile
    return GENERIC
