"""The words of sound design Patch Pilot understands: adjectives and instrument categories.

One vocabulary for ``match --text`` (presets described this way) and ``tweak`` (a preset moved
this way). Descriptors are those of ``audio/descriptors.py`` plus, for ``tweak`` only (the
index does not store them), ``release`` and ``space`` (``tweak/measure.py``); a text query
ignores those two.

An adjective asks for descriptors to go one way (``+1``: more, ``-1``: less; a smaller
weight for a side effect) and agrees with library tags. Synonyms point at a headword;
opposite pairs say which tags disagree with a word ("bright" disagrees with presets tagged
"dark"). Category words (with plurals and instrument names) pick the preset category.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """What one headword asks for."""

    descriptors: Mapping[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


#: Headwords. Descriptor names are those of ``descriptors.DESCRIPTORS`` plus tweak's ``release``
#: and ``space``; a word's strongest descriptor is what ``tweak`` moves.
ADJECTIVES: dict[str, Term] = {
    "bright": Term({"brightness": 1.0}, ("bright",)),
    "dark": Term({"brightness": -1.0}, ("dark",)),
    "warm": Term({"brightness": -0.7, "grit": -0.3}, ("warm",)),
    "mellow": Term({"brightness": -1.0, "attack": 0.3}, ("mellow", "soft")),
    "harsh": Term({"brightness": 1.0, "grit": 0.7}, ("aggressive",)),
    "gritty": Term({"grit": 1.0}, ("gritty", "distorted")),
    "distorted": Term({"grit": 1.0, "brightness": 0.3}, ("distorted", "gritty")),
    "buzzy": Term({"grit": 0.7, "brightness": 0.5}, ("buzzy",)),
    "aggressive": Term({"grit": 0.8, "brightness": 0.6}, ("aggressive",)),
    "clean": Term({"grit": -1.0, "noisiness": -0.5}, ("clean",)),
    "smooth": Term({"grit": -0.8, "attack": 0.3}, ("smooth",)),
    "plucky": Term({"sustain": -1.0, "attack": -0.6}, ("plucky", "percussive")),
    "percussive": Term({"attack": -1.0, "sustain": -0.7}, ("percussive",)),
    "punchy": Term({"attack": -1.0, "sustain": -0.3}, ("punchy",)),
    "sustained": Term({"sustain": 1.0}, ("sustained",)),
    "soft": Term({"attack": 0.7, "brightness": -0.5}, ("soft",)),
    "swelling": Term({"attack": 1.0}, ()),
    "evolving": Term({"movement": 1.0}, ("evolving",)),
    "wobbly": Term({"movement": 1.0}, ("wobble",)),
    "vibrato": Term({"movement": 0.6}, ("vibrato",)),
    "static": Term({"movement": -1.0}, ()),
    "glassy": Term({"brightness": 0.7, "grit": -0.5, "noisiness": -0.5}, ("glassy",)),
    "metallic": Term({"inharmonicity": 1.0}, ("metallic",)),
    "pure": Term({"inharmonicity": -0.7, "noisiness": -0.7, "grit": -0.5}, ("clean",)),
    "hollow": Term({"hollowness": 1.0}, ("hollow",)),
    "fat": Term({"width": 0.6, "register": -0.5, "grit": 0.3}, ("fat", "detuned")),
    "thin": Term({"width": -0.5, "register": 0.5, "grit": -0.3}, ("thin",)),
    "airy": Term({"noisiness": 1.0, "brightness": 0.5}, ("airy", "breathy")),
    "breathy": Term({"noisiness": 1.0}, ("breathy", "airy")),
    "noisy": Term({"noisiness": 1.0}, ("noisy",)),
    "wide": Term({"width": 1.0}, ("wide",)),
    "narrow": Term({"width": -1.0}, ()),
    "lush": Term({"width": 0.7, "movement": 0.5}, ("lush",)),
    "detuned": Term({"width": 0.6, "movement": 0.4}, ("detuned",)),
    "deep": Term({"register": -1.0, "brightness": -0.4}, ("sub", "dark")),
    "sub": Term({"register": -1.0, "brightness": -0.7}, ("sub",)),
    "high": Term({"register": 1.0}, ()),
    # release is measured by tweak only: a text query ranks these by their sustain
    "lingering": Term({"release": 1.0, "sustain": 0.3}, ("sustained",)),
    "abrupt": Term({"release": -1.0, "sustain": -0.3}, ("plucky",)),
    "wet": Term({"space": 1.0, "width": 0.3}, ("ambient",)),
    "dry": Term({"space": -1.0, "width": -0.3}, ()),
    "resonant": Term({}, ("resonant",)),
    "vintage": Term({}, ("vintage",)),
    "digital": Term({}, ("digital",)),
    "fm": Term({}, ("fm",)),
}

#: Other words (and nouns) for a headword.
SYNONYMS: dict[str, str] = {
    "brilliant": "bright", "crisp": "bright", "sparkly": "bright", "sparkling": "bright", "shiny": "bright",
    "sharp": "bright", "brighter": "bright", "brightness": "bright",
    "darker": "dark", "muffled": "dark", "muted": "dark", "dull": "dark", "murky": "dark", "filtered": "dark",
    "round": "warm", "rounded": "warm", "analog": "warm", "analogue": "warm", "cozy": "warm", "warmer": "warm",
    "mellower": "mellow", "gentle": "mellow", "velvety": "mellow",
    "abrasive": "harsh", "piercing": "harsh", "screaming": "harsh",
    "grit": "gritty", "grittier": "gritty", "dirtier": "gritty", "grimy": "gritty", "dirty": "gritty", "crunchy": "gritty", "crunch": "gritty",
    "raspy": "gritty", "rough": "gritty", "lofi": "gritty", "bitcrushed": "gritty", "crushed": "gritty",
    "distortion": "distorted", "overdriven": "distorted", "overdrive": "distorted", "driven": "distorted",
    "drive": "distorted",
    "saturated": "distorted", "saturation": "distorted", "fuzzy": "distorted", "fuzz": "distorted",
    "clipped": "distorted",
    "buzz": "buzzy", "nasal": "buzzy", "reedy": "buzzy",
    "angry": "aggressive", "nasty": "aggressive", "growling": "aggressive", "growl": "aggressive",
    "snarling": "aggressive", "heavy": "aggressive",
    "pristine": "clean", "polished": "clean", "undistorted": "clean", "cleaner": "clean",
    "silky": "smooth", "creamy": "smooth", "silk": "smooth",
    "plucked": "plucky", "short": "plucky", "staccato": "plucky", "snappy": "plucky", "snap": "plucky",
    "transient": "percussive", "struck": "percussive", "hit": "percussive", "clicky": "percussive",
    "tight": "punchy", "punch": "punchy", "hard": "punchy", "fast": "punchy", "quick": "punchy",
    "sustaining": "sustained", "long": "sustained", "held": "sustained", "droning": "sustained",
    "legato": "sustained", "continuous": "sustained",
    "delicate": "soft", "tender": "soft",
    "swell": "swelling", "swells": "swelling", "bowed": "swelling", "slow": "swelling", "fading": "swelling",
    "moving": "evolving", "morphing": "evolving", "animated": "evolving",
    "shifting": "evolving", "sweeping": "evolving", "sweep": "evolving", "movement": "evolving",
    "modulated": "evolving", "modulation": "evolving", "pulsing": "evolving", "rhythmic": "evolving",
    "wobble": "wobbly", "wobbling": "wobbly", "wub": "wobbly", "wobbles": "wobbly", "lfo": "wobbly",
    "tremolo": "vibrato", "warbly": "vibrato", "warble": "vibrato", "vibey": "vibrato",
    "still": "static", "steady": "static", "steadier": "static", "stable": "static", "constant": "static",
    "glass": "glassy", "crystal": "glassy", "crystalline": "glassy", "icy": "glassy", "shimmering": "glassy",
    "shimmer": "glassy", "sparkle": "glassy",
    "metal": "metallic", "clangy": "metallic", "clang": "metallic", "inharmonic": "metallic", "tinny": "metallic",
    "bell-like": "metallic", "ringing": "metallic", "clanky": "metallic",
    "sine": "pure", "sinewave": "pure", "simple": "pure",
    "hollowed": "hollow", "square": "hollow", "woody": "hollow", "boxy": "hollow", "clarinet": "hollow",
    "thick": "fat", "huge": "fat", "massive": "fat", "big": "fat", "phat": "fat", "full": "fat", "beefy": "fat",
    "chunky": "fat", "fatter": "fat",
    "weak": "thin", "skinny": "thin", "small": "thin", "tiny": "thin", "light": "thin", "lean": "thin",
    "air": "airy", "ethereal": "airy", "wispy": "airy", "breath": "breathy", "breathing": "breathy",
    "whispery": "breathy", "windy": "breathy",
    "noise": "noisy", "noisier": "noisy", "hissy": "noisy", "hiss": "noisy", "static-y": "noisy",
    "stereo": "wide", "spread": "wide", "panned": "wide",
    "chorus": "wide", "chorused": "wide", "width": "wide", "wider": "wide",
    "roomy": "wet", "reverb": "wet", "reverberant": "wet", "ambient": "wet", "wetter": "wet", "echo": "wet",
    "echoey": "wet", "delay": "wet", "spacey": "wet", "spacious": "wet", "hall": "wet", "room": "wet",
    "drier": "dry", "dryer": "dry",
    "mono": "narrow", "centered": "narrow", "centred": "narrow", "narrower": "narrow",
    "rich": "lush", "dreamy": "lush", "supersaw": "detuned", "unison": "detuned",
    "detune": "detuned", "reese": "detuned",
    "low": "deep", "booming": "deep", "boomy": "deep", "rumbling": "deep", "rumble": "deep", "lowend": "deep",
    "subby": "sub", "subs": "sub",
    "higher": "high", "squeaky": "high", "whistling": "high",
    "resonance": "resonant", "squelchy": "resonant", "squelch": "resonant", "acid": "resonant",
    "retro": "vintage", "old": "vintage", "classic": "vintage", "80s": "vintage", "70s": "vintage",
    "eighties": "vintage", "seventies": "vintage",
    "modern": "digital", "futuristic": "digital", "glitchy": "digital", "glitch": "digital", "chiptune": "digital",
    "8bit": "digital", "computer": "digital",
    "dx7": "fm", "dx": "fm",
}

#: Pairs of opposite headwords: a preset tagged with the opposite's tags disagrees.
OPPOSITES: tuple[tuple[str, str], ...] = (
    ("bright", "dark"), ("bright", "mellow"), ("gritty", "clean"), ("distorted", "clean"), ("harsh", "smooth"),
    ("aggressive", "soft"), ("plucky", "sustained"), ("percussive", "swelling"), ("punchy", "soft"),
    ("evolving", "static"), ("fat", "thin"), ("wide", "narrow"), ("noisy", "pure"), ("airy", "pure"),
    ("deep", "high"), ("warm", "harsh"), ("glassy", "gritty"), ("metallic", "pure"), ("wet", "dry"),
    ("lingering", "abrupt"),
)

#: Phrases read as one word before single words.
PHRASES: dict[str, str] = {
    "slow attack": "swelling", "fade in": "swelling", "fades in": "swelling", "long attack": "swelling",
    "fast attack": "punchy", "sharp attack": "punchy", "quick attack": "punchy", "hard attack": "punchy",
    "short decay": "plucky", "fast decay": "plucky", "long decay": "sustained",
    "shorter attack": "punchy", "faster attack": "punchy", "quicker attack": "punchy", "snappier attack": "punchy",
    "longer attack": "swelling", "slower attack": "swelling", "softer attack": "swelling",
    "long release": "lingering", "longer release": "lingering", "slow release": "lingering",
    "slower release": "lingering", "long tail": "lingering", "longer tail": "lingering",
    "short release": "abrupt", "shorter release": "abrupt", "fast release": "abrupt", "faster release": "abrupt",
    "quick release": "abrupt", "quicker release": "abrupt", "short tail": "abrupt", "shorter tail": "abrupt",
    "lo fi": "gritty", "low end": "deep", "low pass": "dark", "lowpass": "dark", "high end": "bright",
    "bit crushed": "gritty", "well rounded": "warm", "top end": "bright",
}

#: Category words (plurals are handled by the parser) and what they select.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "bass": ("bass",), "bassline": ("bass",), "basses": ("bass",), "808": ("bass",), 
    "pad": ("pad",), "atmosphere": ("pad",), "texture": ("pad",), "drone": ("pad",), "soundscape": ("pad",),
    "choir": ("pad",), "bed": ("pad",),
    "lead": ("lead",), "solo": ("lead",), "melody": ("lead",), "hook": ("lead",),
    "pluck": ("pluck",), "arp": ("pluck",), "arpeggio": ("pluck",), "harp": ("pluck",), "guitar": ("pluck",),
    "koto": ("pluck",), "pizzicato": ("pluck",), "pizz": ("pluck",), "kalimba": ("pluck",),
    "stab": ("pluck", "brass"), "chord": ("pluck", "keys"),
    "keys": ("keys",), "key": ("keys",), "piano": ("keys",), "ep": ("keys",), "rhodes": ("keys",),
    "wurli": ("keys",), "wurlitzer": ("keys",), "clav": ("keys",), "clavinet": ("keys",),
    "harpsichord": ("keys",), "keyboard": ("keys",),
    "organ": ("organ",), "hammond": ("organ",), "drawbar": ("organ",), "harmonium": ("organ",),
    "bell": ("bell",), "chime": ("bell",), "glockenspiel": ("bell",), "celesta": ("bell",),
    "vibraphone": ("bell",), "vibes": ("bell",), "marimba": ("bell",), "mallet": ("bell",), "gong": ("bell",),
    "xylophone": ("bell",), "musicbox": ("bell",),
    "brass": ("brass",), "horn": ("brass",), "trumpet": ("brass",), "trombone": ("brass",), "tuba": ("brass",),
    "sax": ("brass",), "fanfare": ("brass",),
    "strings": ("strings",), "string": ("strings",), "violin": ("strings",), "viola": ("strings",),
    "cello": ("strings",), "orchestral": ("strings",), "ensemble": ("strings",), "orchestra": ("strings",),
    "fx": ("fx",), "sfx": ("fx",), "effect": ("fx",), "riser": ("fx",), "zap": ("fx",), "laser": ("fx",),
    "impact": ("fx",), "whoosh": ("fx",), "siren": ("fx",), "downlifter": ("fx",), "uplifter": ("fx",),
}

#: Words that negate the next understood word, and words that scale it.
NEGATIONS = frozenset({"not", "no", "non", "without", "never", "less", "un", "zero"})
INTENSIFIERS: dict[str, float] = {
    "very": 1.5, "super": 1.5, "really": 1.5, "extremely": 2.0, "ultra": 2.0, "so": 1.3, "more": 1.3,
    "slightly": 0.5, "somewhat": 0.6, "bit": 0.5, "little": 0.5, "kinda": 0.6, "mildly": 0.5,
}

#: Grammar and filler: neither understood nor worth reporting as ignored.
FILLER = frozenset({
    "a", "an", "the", "and", "or", "with", "of", "for", "to", "in", "on", "that", "this", "these", "those", "some",
    "sound", "sounds", "sounding", "synth", "synths", "preset", "presets", "patch", "patches", "tone", "tones",
    "like", "kind", "sort", "type", "style", "my", "me", "i", "want", "need", "give", "find", "something",
    "one", "is", "it", "its", "but", "yet", "also", "too", "quite", "lot", "lots", "ish", "y", "vibe",
    "please", "instrument", "note", "notes", "s",
})


def opposite_tags(headword: str) -> tuple[str, ...]:
    """Tags of the headwords opposite to ``headword``."""
    tags: list[str] = []
    for left, right in OPPOSITES:
        other = right if left == headword else left if right == headword else None
        if other is not None:
            tags += [t for t in ADJECTIVES[other].tags if t not in ADJECTIVES[headword].tags and t not in tags]
    return tuple(tags)


def vocabulary_markdown() -> str:
    """docs/VOCABULARY.md: every headword with what it moves, its other words and phrases."""
    other: dict[str, list[str]] = {}
    for word, headword in sorted({**SYNONYMS, **PHRASES}.items()):
        other.setdefault(headword, []).append(word)
    lines = ["# Vocabulary", "",
             "The words `match --text` and `tweak` understand, from `patchpilot/describe/vocabulary.py`",
             "(this file is written from it: `python -m scripts.make_vocabulary_doc`). A word asks for",
             "descriptors to go up (+) or down (-); `tweak` moves the one with the largest weight, a text",
             "query ranks presets by all of them (release and space are measured by `tweak` only).",
             "`not`, `no`, `less`, `without` turn the next word around; `very`, `slightly`, `more`... scale it.", "",
             "| word | descriptors | tags | also |", "|---|---|---|---|"]
    for headword, term in ADJECTIVES.items():
        moves = ", ".join(f"{name} {weight:+g}" for name, weight in term.descriptors.items()) or "(tags only)"
        lines.append(f"| {headword} | {moves} | {', '.join(term.tags)} | {', '.join(other.get(headword, []))} |")
    lines += ["", "Categories (a text query only):", ""]
    by_category: dict[str, list[str]] = {}
    for word, categories in CATEGORY_WORDS.items():
        by_category.setdefault("/".join(categories), []).append(word)
    lines += [f"- **{name}**: {', '.join(words)}" for name, words in by_category.items()]
    return "\n".join(lines) + "\n"
