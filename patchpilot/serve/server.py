"""The state behind the page: the facade, the results kept, the refinements running, and what
is made of them (the JSON of a result, pictures, keyboard notes). ``routes.py`` maps HTTP
onto it; ``app.py`` puts the application together.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse

from patchpilot.api import (Match, MatchResult, PatchPilot, RefineCancelled, RefineOptions, SimilarResult,
                            TweakedResult)
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError, PatchPilotError, UsageError
from patchpilot.serve.jobs import BoundedCache, Job, JobRegistry, WorkGate
from patchpilot.serve.memory import give_back_free_memory

STATIC_DIR = Path(__file__).parent / "static"
#: Uploads larger than this are refused before they are decoded (``serve --max-upload-mb``).
DEFAULT_MAX_UPLOAD_MB = 64
#: ... and longer ones after (a song's separation takes about half its length on two cores).
MAX_UPLOAD_SECONDS = 600.0
#: Results kept for their pictures, notes and downloads (the oldest is dropped).
MAX_RESULTS = 16
#: Matches shown per query.
PAGE_TOP_K = 5
#: The keyboard plays notes in this range.
KEYBOARD_NOTES = range(24, 109)
MAX_PAGE_BUDGET = 20_000
#: Seconds between keep-alive comments of an idle event stream.
EVENT_KEEPALIVE_SECONDS = 10.0
#: How often an event stream looks whether its client is still there.
DISCONNECT_POLL_SECONDS = 0.5
#: Matches and refinements admitted at once (one runs, the others wait); more get a 503.
MAX_PENDING_WORK = 4
#: Pictures and keyboard notes admitted at once (one renders, the others wait).
MAX_PENDING_RENDERS = 8
#: Loudness of the A/B player's sounds (RMS over their sounding part, dBFS).
LEVEL_DBFS = -20.0
#: Pictures and keyboard notes kept per result.
MAX_CACHED_PER_RESULT = 48


@dataclass
class Entry:
    """A result and what was made of it: pictures and notes (the newest few per match and
    note), and the refinement's convergence picture."""

    result: MatchResult
    input_wav: bytes | None
    cache: BoundedCache[tuple, bytes] = field(default_factory=lambda: BoundedCache(MAX_CACHED_PER_RESULT))
    convergence: bytes | None = None


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit WAV for the browser's audio element (scaled down when the synth peaks over 0 dBFS)."""
    import soundfile

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    samples = audio / peak * 0.99 if peak > 0.99 else audio
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(samples, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def level_matched(audio: np.ndarray) -> np.ndarray:
    """Audio scaled to LEVEL_DBFS RMS over its sounding part (its frames within 40 dB of the
    loudest), so that an A/B comparison is of the sounds, not of their loudness; a sound whose
    peak would clip is turned down instead (rare at -20 dBFS: a click, a very peaky pluck)."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    frames = mono[: mono.size // 512 * 512].reshape(-1, 512).astype(np.float64)
    power = (frames ** 2).mean(axis=1) if frames.size else np.zeros(1)
    if power.max() <= 1e-12:
        return audio
    rms = float(np.sqrt(power[power > power.max() * 1e-4].mean()))
    gain = 10 ** (LEVEL_DBFS / 20) / rms
    peak = float(np.max(np.abs(audio))) * gain
    return (audio * gain * (0.99 / peak if peak > 0.99 else 1.0)).astype(np.float32)


def wav_level_matched(wav: bytes) -> bytes:
    """A WAV (the input as uploaded) at the A/B player's level."""
    import soundfile

    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return wav_bytes(level_matched(audio), rate)


def error_response(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


def safe_label(name: str | None) -> str:
    """The uploaded file's name, for labels only: its last part, printable characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    return re.sub(r"[^\w .,()+-]", "", base)[:80] or "upload"


class Server:
    """The state behind the page: the facade, the results and the running refinements."""

    def __init__(self, pilot: PatchPilot, max_upload_mb: float) -> None:
        self.pilot = pilot
        self.max_upload_mb = max_upload_mb
        self.max_upload_bytes = int(max_upload_mb * 2**20)
        #: One match or refinement at a time (they share the facade's synth pools).
        self.work_lock = threading.Lock()
        #: One render at a time for pictures and keyboard notes (fresh synths, small and quick).
        self.render_lock = threading.Lock()
        self.results: OrderedDict[str, Entry] = OrderedDict()
        self.jobs = JobRegistry()
        self.work_gate = WorkGate(MAX_PENDING_WORK, "matches and refinements")
        self.render_gate = WorkGate(MAX_PENDING_RENDERS, "pictures and notes")
        self._ids = itertools.count(1)
        self._state_lock = threading.Lock()

    def warm_up(self) -> None:
        """Open the index and load the embedder before the first request needs them."""
        try:
            with self.work_lock:
                self.pilot.matcher  # noqa: B018 - a cached property that loads
        except PatchPilotError:
            pass  # the first request says what is wrong

    def keep(self, result: MatchResult, input_wav: bytes | None) -> str:
        with self._state_lock:
            rid = f"r{next(self._ids)}"
            self.results[rid] = Entry(result, input_wav)
            while len(self.results) > MAX_RESULTS:
                self.results.popitem(last=False)
        give_back_free_memory()  # a match's or refinement's buffers are free now (serve/memory.py)
        return rid

    def entry(self, rid: str) -> Entry:
        with self._state_lock:
            entry = self.results.get(rid)
        if entry is None:
            raise UsageError("that result is no longer kept: match again")
        return entry

    def match_of(self, rid: str, rank: int) -> tuple[Entry, Match]:
        entry = self.entry(rid)
        for match in entry.result.matches:
            if match.rank == rank:
                return entry, match
        raise UsageError(f"no match #{rank} in that result")

    # ---- the JSON of a result -----------------------------------------------------------
    def result_json(self, rid: str) -> dict:
        entry = self.entry(rid)
        result = entry.result
        labelled = result.analysis is not None
        matches = []
        for match in result.matches:
            document = self.pilot.card(result, match)
            base = f"/api/results/{rid}/matches/{match.rank}"
            files = self.pilot.deliverables(match)
            with_fx = files.get("preset-with-fx")
            document.update({
                "picture_url": f"{base}/picture.png",
                "audio_url": f"{base}/audio.wav",
                "preset_url": f"{base}/preset",
                "preset_filename": files.get("preset").name,
                "fx_url": f"{base}/fx.json" if files.get("fx") else None,
                # the chain in the synth's own effects, where it has them (what --export writes)
                "preset_with_fx_url": f"{base}/preset-with-fx" if with_fx else None,
                "preset_with_fx_filename": with_fx.name if with_fx else None,
                # each VST3 effect of the chain at its settings, for the user's copy of the plugin
                "fx_plugin_presets": [{"url": f"{base}/fx-plugin/{f.position}", "filename": f.name}
                                      for f in files.files if f.kind == "fx-plugin"],
            })
            matches.append(document)
        query = getattr(result, "query", None)
        name = f"presets like {result.input_name}" if isinstance(result, SimilarResult) else result.input_name
        tweak = self.pilot.tweak_document(result.tweak) if isinstance(result, TweakedResult) and result.tweak else None
        return {"id": rid, "input": name, "labelled": labelled, "matches": matches,
                "input_url": f"/api/results/{rid}/input.wav" if entry.input_wav else None,
                # the A side of the A/B player, level-matched: the input, or a tweak's preset before it
                "a_url": (f"/api/results/{rid}/matches/1/before.wav" if tweak is not None
                          else f"/api/results/{rid}/input.wav?level=matched" if entry.input_wav else None),
                "a_label": ("before the tweak" if tweak is not None
                            else "the preset" if isinstance(result, SimilarResult) else "your sound"),
                "query": query.to_dict() if query is not None else None,
                "tweak": tweak,
                "can_refine": labelled and bool(result.matches),
                "refine_url": f"/api/results/{rid}/convergence.png" if entry.convergence is not None else None}

    # ---- work -------------------------------------------------------------------------
    def match_file(self, path: Path, label: str) -> str:
        audio = self.pilot.read_audio(path, name=label)
        if audio.duration > MAX_UPLOAD_SECONDS:
            raise InputAudioError(f"{label}: {audio.duration:.0f} s is longer than the page takes "
                                  f"({MAX_UPLOAD_SECONDS:.0f} s); use patchpilot match")
        with self.work_gate.admit(), self.work_lock:
            result = self.pilot.match(path, top_k=PAGE_TOP_K, name=label)
        return self.keep(result, wav_bytes(audio.samples, audio.sample_rate))

    def match_link(self, url: str) -> str:
        with self.work_gate.admit(), self.work_lock:
            result = self.pilot.match(url, top_k=PAGE_TOP_K)
        return self.keep(result, None)

    def match_text(self, text: str) -> str:
        with self.work_gate.admit(), self.work_lock:
            result = self.pilot.match_text(text, top_k=PAGE_TOP_K)
        return self.keep(result, None)

    def match_similar(self, rid: str, rank: int) -> str:
        """Presets like a match, played as the match was (a song's match at C4: its key would be
        the song's melody)."""
        entry, match = self.match_of(rid, rank)
        note = 60 if entry.result.from_track else match.render.note
        with self.work_gate.admit(), self.work_lock:
            result = self.pilot.similar(match.preset, note=note, velocity=match.render.velocity, top_k=PAGE_TOP_K)
            played = result.played
            reference = self.pilot.render(match.preset, note=played.note, velocity=played.velocity,
                                          seconds=played.note_seconds, tail=played.total_seconds - played.note_seconds,
                                          sample_rate=EXPORT_SAMPLE_RATE_HZ)
        return self.keep(result, wav_bytes(reference, EXPORT_SAMPLE_RATE_HZ))

    def match_tweak(self, rid: str, rank: int, words: str) -> str:
        """A match's preset moved the way ``words`` ask: a new result with that one answer."""
        entry, match = self.match_of(rid, rank)
        with self.work_gate.admit(), self.work_lock:
            result = self.pilot.tweak_match(entry.result, match, words)
        return self.keep(result, entry.input_wav)

    def picture(self, rid: str, rank: int) -> bytes:
        entry, match = self.match_of(rid, rank)
        key = ("picture", rank)
        cached = entry.cache.get(key)
        if cached is None:
            with self.render_gate.admit(), self.render_lock:
                cached = self.pilot.picture_png(entry.result, match)
            entry.cache.put(key, cached)
        return cached

    def input_audio(self, rid: str, matched: bool = False) -> bytes:
        """The input as heard, or level-matched for the A/B player."""
        entry = self.entry(rid)
        if entry.input_wav is None:
            raise UsageError("this result has no input audio")
        if not matched:
            return entry.input_wav
        cached = entry.cache.get(("input", "matched"))
        if cached is None:
            cached = wav_level_matched(entry.input_wav)
            entry.cache.put(("input", "matched"), cached)
        return cached

    def before_audio(self, rid: str, rank: int) -> bytes:
        """A tweaked answer's preset before the tweak, played as the tweak is (level-matched)."""
        entry, match = self.match_of(rid, rank)
        result = entry.result
        if not isinstance(result, TweakedResult) or result.tweak is None:
            raise UsageError("this answer is not a tweak")
        cached = entry.cache.get(("before", rank))
        if cached is None:
            with self.render_gate.admit(), self.render_lock:  # as the answer plays, the preset before the tweak
                audio = self.pilot.match_audio(replace(match, preset=result.tweak.start))
            cached = wav_bytes(level_matched(audio), EXPORT_SAMPLE_RATE_HZ)
            entry.cache.put(("before", rank), cached)
        return cached

    def note_audio(self, rid: str, rank: int, note: int | None, matched: bool = False) -> bytes:
        entry, match = self.match_of(rid, rank)
        if note is not None and note not in KEYBOARD_NOTES:
            raise UsageError(f"note {note} is outside the keyboard ({KEYBOARD_NOTES[0]}-{KEYBOARD_NOTES[-1]})")
        key = ("note", rank, note, matched)
        cached = entry.cache.get(key)
        if cached is None:
            with self.render_gate.admit(), self.render_lock:
                audio = self.pilot.match_audio(match, note=note)
            cached = wav_bytes(level_matched(audio) if matched else audio, EXPORT_SAMPLE_RATE_HZ)
            entry.cache.put(key, cached)
        return cached

    def start_refine(self, rid: str, budget: int, seconds: float | None) -> Job:
        entry = self.entry(rid)
        options = RefineOptions(budget, seconds)
        self.work_gate.enter()  # held until the refinement ends (raises ServerBusy when full)
        job = self.jobs.add()
        job.events.put({"type": "started", "total": budget})  # the page shows it has begun at once
        began = time.perf_counter()
        history: list[tuple[int, int, float]] = []  # the progress reports, for the convergence picture

        def progress(done: int, total: int, best: float) -> None:
            if job.cancel.is_set():
                raise RefineCancelled
            history.append((done, total, float(best)))
            job.events.put({"type": "progress", "done": done, "total": total, "best": round(best, 4),
                            "seconds": round(time.perf_counter() - began, 2)})

        def run() -> None:
            try:
                with self.work_lock:
                    if job.cancel.is_set():
                        raise RefineCancelled
                    refined = self.pilot.refine(entry.result, options, progress, job.cancel)
                new_id = self.keep(refined, entry.input_wav)
                self.entry(new_id).convergence = self.pilot.convergence_png(refined, history)
                job.events.put({"type": "done", "result": self.result_json(new_id)})
            except RefineCancelled:
                job.events.put({"type": "cancelled"})
            except PatchPilotError as error:
                job.events.put({"type": "error", "error": " ".join(str(error).split())})
            except Exception as error:  # noqa: BLE001 - a bug: still one line for the page
                job.events.put({"type": "error", "error": f"internal error: {type(error).__name__}: {error}"})
            finally:
                self.jobs.finish(job)
                self.work_gate.leave()

        try:
            threading.Thread(target=run, name=f"refine-{job.id}", daemon=True).start()
        except BaseException:
            self.jobs.finish(job)
            self.work_gate.leave()
            raise
        return job

    async def events(self, job: Job, request: Request) -> AsyncIterator[str]:
        """Server-sent event lines of a job until it ends; a client that leaves first cancels
        it (``JobRegistry.listening``)."""
        with self.jobs.listening(job):
            quiet = 0.0
            while True:
                if await request.is_disconnected():
                    return
                try:
                    event = job.events.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(DISCONNECT_POLL_SECONDS)
                    quiet += DISCONNECT_POLL_SECONDS
                    if quiet >= EVENT_KEEPALIVE_SECONDS:
                        quiet = 0.0
                        yield ": keep-alive\n\n"
                    continue
                quiet = 0.0
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                if event["type"] in ("done", "cancelled", "error"):
                    return
