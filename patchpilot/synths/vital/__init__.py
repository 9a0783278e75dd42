"""Vital, through the ``vita`` bindings.

Presets are applied to a JSON template (Vital's init patch with deterministic settings) or,
for imported ``.vital`` files, to the file's own JSON. Quirks handled here (see the notes in
``docs/ARCHITECTURE.md``):

* ``osc_N_random_phase`` defaults to 1, which makes every render different: we set it to 0.
* Vital's own noise sample is random per instance: the template carries a fixed one.
* ``set()`` neither clamps nor rounds, and ``set_normalized`` is wrong for the exponential
  controls: we clamp/round raw values ourselves and never use ``set_normalized``.
* A bogus modulation name segfaults on the next render: we only write routings whose
  source and destination are in vita's own lists. An imported file is first loaded and
  played in a child process (``trial.py``): what vita plays there is imported, every
  field of it kept and written back on export, including those vita ignores.
* A voice still releasing at the end of a render leaks into the next one: after each render
  the amp envelope is cut to zero and a 5 ms flush render retires it.

One job a module, each importing only those above it in this list:

* ``tables.py``: the wavetables and LFO shapes our presets choose from.
* ``checks.py``: why vita refused or crashed on a preset (never the refusal itself).
* ``trial.py``: the sandbox: a document loaded and played by vita in a child process.
* ``fx.py``: an answer's effect chain set in Vital's own effects.
* ``binding.py``: the ``vita`` bindings, and what vita accepts.
* ``controls.py``: the curated controls: which settings are parameters, their scales and ranges.
* ``document.py``: reading and writing the ``.vital`` JSON document.
* ``voice.py``: :class:`VitalVoice`, one ``vita.Synth``, and first notes on a fresh one.
* ``engine.py``: :class:`VitalEngine`.
"""

from __future__ import annotations

from patchpilot.synths.vital.controls import ENVELOPES, FILTERS, LFOS, MOD_ROUTES, OSCILLATORS, mod_param_name
from patchpilot.synths.vital.engine import VitalEngine
from patchpilot.synths.vital.voice import VitalVoice, plays_fresh

__all__ = ["ENVELOPES", "FILTERS", "LFOS", "MOD_ROUTES", "OSCILLATORS", "VitalEngine", "VitalVoice", "mod_param_name",
           "plays_fresh"]
