"""The trial of a Vital preset: vita loads it and plays it in a child process.

This is what decides whether a ``.vital`` file imports: a file vita loads and plays is a
preset, whatever fields it carries. vita trusts what it loads and segfaults on some content
(``checks.py`` lists what was measured), so the trial runs in a child process, one
request at a time: a crash there is an error message here instead of the end of this
process. The child is started on first use, restarted after a crash or a hang, runs under a
memory cap (a corrupt sample length allocates until it fails), and exits when this process
closes its stdin.
"""

from __future__ import annotations

import atexit
import os
import select
import struct
import subprocess
import sys
import threading

#: Seconds a trial may take before the preset is taken to hang vita.
HANG_SECONDS = 30.0
#: Address space the child may use (it needs about 230 MB for the largest real presets).
MEMORY_CAP_BYTES = 4 << 30

#: The child: load, then play a short note; a silent one is played again longer and at two
#: more notes (a slow attack, a key-tracked level) before the preset is called silent.
_CHILD = """
import resource, struct, sys
import numpy, vita
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
SILENT_PEAK = 1e-5

def verdict(text):
    try:
        synth = vita.Synth()  # fresh: no tail of the last preset sounds in this one
        if not synth.load_json(text):
            return b"R"
        plays = [(60, 0.5, 0.6)] + [(note, 2.0, 2.5) for note in (60, 36, 84)]
        for note, held, total in plays:
            audio = numpy.asarray(synth.render(note, 0.8, held, total))
            if not numpy.isfinite(audio).all():
                return b"N"
            if numpy.abs(audio).max() > SILENT_PEAK:
                return b"O"
        return b"S"
    except MemoryError:
        return b"M"

while len(head := stdin.read(4)) == 4:
    answer = verdict(stdin.read(struct.unpack("<I", head)[0]).decode("utf-8"))
    stdout.write(answer)
    stdout.flush()
    if answer == b"M":
        break
"""

_COMPLAINTS = {
    b"R": "vita refused this preset (made by a newer Vital, or damaged)",
    b"N": "the preset plays NaN or infinite samples in vita (damaged?)",
    b"S": "the preset plays silence in vita (C2, C4 and C6, held 2 s)",
    b"M": "the preset made vita run out of memory (damaged?)",
    b"H": f"the preset hung vita (no answer in {HANG_SECONDS:.0f} s)",
    b"": "the preset crashed vita (damaged, or content vita cannot play)",
}


class VitaTrial:
    """Loads preset JSON in vita in a child process and plays it: :meth:`complaint`."""

    def __init__(self, child_code: str = _CHILD, hang_seconds: float = HANG_SECONDS) -> None:
        self._code = child_code
        self._hang_seconds = hang_seconds
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        atexit.register(self.close)

    def complaint(self, text: str) -> str | None:
        """None when vita loads ``text`` and plays a finite, audible note; otherwise what
        went wrong, in words."""
        data = text.encode("utf-8")
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen([sys.executable, "-c", self._code, str(MEMORY_CAP_BYTES)],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL)
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(struct.pack("<I", len(data)) + data)
                process.stdin.flush()
                ready, _, _ = select.select([process.stdout], [], [], self._hang_seconds)
                answer = os.read(process.stdout.fileno(), 1) if ready else b"H"
            except BrokenPipeError:
                answer = b""
            if answer in (b"", b"H", b"M"):  # the child died, hangs or is spent: a new one serves the next
                process.kill()
                process.wait()
                self._process = None
        return None if answer == b"O" else _COMPLAINTS.get(answer, _COMPLAINTS[b""])

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()  # type: ignore[union-attr]
                self._process.wait()
                self._process = None
