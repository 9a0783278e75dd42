"""The renders of one query, through each synth's own pool, tolerant of a synth that crashes:
a preset whose render kills its worker (a plugin in worker processes) is heard as silence, not
played again, and named afterwards, so that one bad preset costs a line, not the match."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.synths import Preset, RenderPool, RenderRequest, play_fresh_native
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, play_request

#: A "held" render releases this long before its end (vita needs the note-off inside).
HELD_MARGIN_SECONDS = 0.01


class QueryRenders:
    """Renders through ``pool_for(synth)``; ``crashed`` collects the presets that crashed
    their synth since the last :meth:`clear`."""

    def __init__(self, pool_for: Callable[[str], RenderPool]) -> None:
        self.pool_for = pool_for
        #: synth -> {preset fingerprint: preset name}
        self.crashed: dict[str, dict[str, str]] = defaultdict(dict)

    def clear(self) -> None:
        self.crashed.clear()

    def crashed_preset(self, preset: Preset) -> bool:
        """Whether ``preset`` crashed its synth in this query."""
        known = self.crashed.get(preset.synth)
        return bool(known) and preset.fingerprint() in known

    def render(self, requests: Sequence[RenderRequest], fresh: bool = False) -> list[np.ndarray]:
        """The requests (any synths, in order) played on their synths' pools at the analysis
        rate, or with ``fresh`` each preset's file on a fresh instance at the native rate
        (what the user hears)."""
        renders: list[np.ndarray | None] = [None] * len(requests)
        by_synth: dict[str, list[int]] = defaultdict(list)
        for position, request in enumerate(requests):
            by_synth[request.preset.synth].append(position)
        for synth, positions in by_synth.items():
            for position, audio in zip(positions, self._render_synth(synth, [requests[p] for p in positions], fresh)):
                renders[position] = audio
        return renders  # type: ignore[return-value]

    def _render_synth(self, synth: str, requests: Sequence[RenderRequest], fresh: bool) -> list[np.ndarray]:
        rate = NATIVE_SAMPLE_RATE_HZ if fresh else ANALYSIS_SAMPLE_RATE_HZ
        known = self.crashed[synth]

        def silence(request: RenderRequest) -> np.ndarray:
            return np.zeros(int(round(request.total_seconds * rate)), np.float32)

        def crashed(request: RenderRequest, _reason: str) -> np.ndarray:
            known[request.preset.fingerprint()] = request.preset.name
            return silence(request)

        renders = [silence(r) for r in requests] if known else [None] * len(requests)
        playing = [i for i, r in enumerate(requests) if not known or r.preset.fingerprint() not in known]
        function = play_fresh_native if fresh else play_request
        for i, audio in zip(playing, self.pool_for(synth).map(function, [requests[i] for i in playing],
                                                              on_crash=crashed)):
            renders[i] = audio
        return renders  # type: ignore[return-value]
