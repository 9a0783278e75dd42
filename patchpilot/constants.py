"""Project-wide constants. Units are in the names (``_HZ``, ``_SECONDS``, ``_DB``)."""

from __future__ import annotations

#: Rate at which every synth renders for analysis, indexing, re-ranking and refinement.
#: 22.05 kHz keeps timbre up to 11 kHz and makes Vital renders ~1.6x cheaper than 44.1 kHz.
ANALYSIS_SAMPLE_RATE_HZ = 22050

#: Rate of the WAV files written by ``--export`` and ``patchpilot render``.
EXPORT_SAMPLE_RATE_HZ = 44100

#: MIDI notes at which every preset is rendered into the index (one embedding per note).
#: A 12-semitone grid keeps any played note within 6 semitones of an indexed one.
INDEX_NOTES = (36, 48, 60, 72, 84)

#: Note and render length (seconds) of the renders that go into the index. The embedder
#: reads the first half second after the attack, so the note is held through it.
INDEX_NOTE_SECONDS = 0.85
INDEX_RENDER_SECONDS = 0.9

#: Designed + variant presets generated per synth in a default build; the issue asks for
#: >= 5,000 after variants that sound like a sibling are dropped.
DEFAULT_INDEX_SIZE_PER_SYNTH = 6200

#: Velocity (MIDI 1-127) used when nothing else is known.
DEFAULT_VELOCITY = 100

#: Default number of presets printed by ``match``.
DEFAULT_TOP_K = 5

#: Candidates fetched from the embedding index and re-rendered by the re-ranker.
DEFAULT_RERANK_CANDIDATES = 24

#: Evaluations (parameter vectors scored) a ``match --refine`` spends by default.
DEFAULT_REFINE_BUDGET = 500

#: Shortest sound the matcher accepts, after trimming silence: a synth kick or a zap of
#: 30-60 ms is a note; below 25 ms (a click) too little of a synth's sound is heard to tell
#: presets apart.
MIN_NOTE_SECONDS = 0.025

#: Shortest note taken from a track (a song or a stem): shorter ones there are drum hits and
#: fragments, not notes worth matching.
TRACK_MIN_NOTE_SECONDS = 0.15

#: Longest stretch of a note that the re-ranker renders and compares.
MAX_COMPARE_SECONDS = 3.0

#: Render length beyond the compared window, so that a candidate aligned at its attack still
#: covers the input (the re-ranker and refinement both).
RENDER_LEAD_SECONDS = 0.2

#: Frames quieter than this relative to the loudest one count as silence.
SILENCE_THRESHOLD_DB = -50.0

#: Absolute level (dBFS, RMS) under which a whole clip counts as silent.
SILENT_CLIP_DBFS = -70.0

#: Where ``patchpilot serve`` listens by default (this computer only).
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8765

#: Name of the index that ships in ``indexes/``.
DEFAULT_INDEX_NAME = "default"

#: Inputs up to this long (seconds) are clips: their notes come from the clip analysis.
#: Longer ones are tracks (``match`` separates them with Demucs unless told otherwise and
#: looks for a few clean notes among many) when their content says so: drums or many notes
#: (``audio/content.py``). One sound with a long release stays a clip up to
#: SINGLE_SOUND_MAX_SECONDS.
TRACK_MIN_SECONDS = 10.0

#: Longest input (seconds) that can still be one sound (a tubular bell, a pad's release);
#: anything longer is a track whatever it holds.
SINGLE_SOUND_MAX_SECONDS = 30.0

#: Demucs model that separates tracks (Demucs' own default: hybrid transformer, four stems).
DEFAULT_DEMUCS_MODEL = "htdemucs"

#: The stem searched for synths: Demucs puts everything that is not drums, bass or voice
#: (synths, keys, guitars) in "other".
DEFAULT_STEM = "other"
