"""The ``vita`` bindings: imported on first use (a clear error where the package is missing),
and what vita accepts (its controls' ranges and modulation names), read once from vita itself.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from patchpilot.errors import SynthError
from patchpilot.synths.vital.checks import VitaLimits


@lru_cache(maxsize=1)
def vita_limits() -> VitaLimits:
    """vita's own control ranges and modulation names, which imported files are checked against."""
    vita = import_vita()
    synth = vita.Synth()
    controls = {}
    for name in synth.get_controls():
        info = synth.get_control_details(name)
        controls[name] = (float(info.min), float(info.max))
    return VitaLimits(controls, frozenset(vita.get_modulation_sources()),
                      frozenset(vita.get_modulation_destinations()))


@lru_cache(maxsize=1)
def import_vita() -> Any:
    try:
        import vita
    except ImportError as exc:  # pragma: no cover - vita is a core dependency
        raise SynthError(f"the Vital engine needs the 'vita' package: pip install vita ({exc})") from None
    return vita
