#!/usr/bin/env python
"""The page under load: many clients on ``patchpilot serve`` at once, on loopback.

    python -m scripts.load_serve                              # 20 clients, 2 minutes, the shipped index
    python -m scripts.load_serve --clients 20 --seconds 30 --index DIR --no-report

The server runs as a user starts it (``python -m patchpilot serve``, its own process, its
own temporary folder). After a warm-up (three matches at low, middle and high notes, their
pictures and keys, a text search, a short refinement: models loaded, pools started) its
resident memory is the baseline; the end is read the same way, just after a last text search
once every client is done (the page gives free memory back after each piece of work). Then each
client loops until the time is up, choosing at random: upload a short synthetic note and
match it (a saw, a square or an organ-like tone at a random pitch), search by text, play
keys of a match on the keyboard (each a render), fetch a match's picture, or refine a match
(a small budget) and follow its events, a third of the time leaving after the first report
(as a closed tab does). A 503 is the page saying it is full (it must carry Retry-After, and
the client waits that long); any other 5xx is a failure. At the end: every refinement has
stopped within 60 s (those whose client left included), the server's memory growth over the
baseline, and what the uploads left in the server's temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Requests an idle client makes per action: upload+match, text, keys, picture, refine.
ACTIONS = (("match", 3), ("text", 2), ("keys", 4), ("picture", 2), ("refine", 1))
REFINE_BUDGET = 24
#: A client that refines leaves after the first report this often.
LEAVE_SHARE = 0.33
#: Seconds every refinement must have stopped by, after the clients are done.
SETTLE_SECONDS = 60.0
#: Targets of the issue (docs/BENCHMARKS.md reports against them).
MAX_RSS_GROWTH_MB = 150.0


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    statuses: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    #: Requests answered with 200, by action.
    answered: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    busy_without_retry_after: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: str, status: int, detail: str = "", retry_after: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.actions[action] += 1
            if status == 200:
                self.answered[action] += 1
            if status >= 500 and status != 503:
                self.failures.append(f"{action}: {status} {detail[:200]}")
            if status == 503 and not (retry_after or "").isdigit():
                self.busy_without_retry_after += 1

    def note(self, action: str) -> None:
        """An action that made no request (a client leaving a stream)."""
        with self.lock:
            self.actions[action] += 1


def tone_wav(kind: str, note: int, seconds: float = 1.0, rate: int = 44100) -> bytes:
    """A short held synthetic note as WAV bytes."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    harmonics = range(1, int(8000 / f0))
    if kind == "saw":
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in harmonics)
    elif kind == "square":
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in harmonics if k % 2)
    else:  # an organ: a few drawbars
        wave = sum(a * np.sin(2 * np.pi * k * f0 * t) for k, a in ((1, 1.0), (2, 0.6), (3, 0.4), (4, 0.3), (8, 0.2)))
    envelope = np.minimum(1.0, t / 0.01) * np.minimum(1.0, (seconds - t) / 0.05)
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * wave * envelope / np.max(np.abs(wave))).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = f"----load{random.getrandbits(64):x}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """One user of the page, in a thread."""

    def __init__(self, base: str, tally: Tally, seed: int) -> None:
        self.base, self.tally, self.rng = base, tally, random.Random(seed)
        self.results: list[dict] = []

    def call(self, action: str, path: str, *, data: bytes | None = None, content_type: str = "",
             timeout: float = 300.0) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, data=data, method="POST" if data is not None else "GET")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                self.tally.record(action, response.status)
                return response.status, body
        except urllib.error.HTTPError as error:
            body = error.read()
            self.tally.record(action, error.code, body.decode(errors="replace"), error.headers.get("Retry-After"))
            if error.code == 503:
                time.sleep(float(error.headers.get("Retry-After") or 5))
            return error.code, body

    def form(self, action: str, path: str, fields: dict[str, str], files: dict | None = None) -> tuple[int, bytes]:
        if files:
            body, kind = multipart(fields, files)
        else:
            body, kind = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
        return self.call(action, path, data=body, content_type=kind)

    def a_match(self) -> dict | None:
        live = [r for r in self.results[-3:] if r.get("matches")]
        return self.rng.choice(live) if live else None

    def step(self) -> None:
        action = self.rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
        if action == "match" or not self.results:
            wav = tone_wav(self.rng.choice(("saw", "square", "organ")), self.rng.randint(40, 76))
            status, body = self.form("match", "/api/match", {}, {"file": ("note.wav", wav)})
            if status == 200:
                self.results.append(json.loads(body))
        elif action == "text":
            status, body = self.form("text", "/api/text", {"text": self.rng.choice(("bright pluck", "dark pad",
                                                                                    "warm bass", "organ"))})
            if status == 200:
                self.results.append(json.loads(body))
        elif action in ("keys", "picture"):
            result = self.a_match()
            if result is None:
                return
            match = self.rng.choice(result["matches"])
            if action == "picture":
                self.call("picture", match["picture_url"])
            else:
                for _ in range(self.rng.randint(1, 4)):
                    self.call("keys", f"{match['audio_url']}?note={self.rng.randint(36, 84)}")
        else:
            result = next((r for r in reversed(self.results) if r.get("can_refine")), None)
            if result is None:
                return
            status, body = self.form("refine", f"/api/results/{result['id']}/refine", {"budget": str(REFINE_BUDGET)})
            if status == 200:
                self.follow(json.loads(body))

    def follow(self, job: dict) -> None:
        """Read the job's events to the end, or leave after the first report."""
        leave = self.rng.random() < LEAVE_SHARE
        try:
            with urllib.request.urlopen(self.base + job["events_url"], timeout=600) as stream:
                self.tally.record("events", stream.status)
                for raw in stream:
                    line = raw.decode().strip()
                    if line.startswith("event: progress") and leave:
                        self.tally.note("left mid-refine")
                        return  # the connection closes: the server must stop that work
                    if line.startswith("event: ") and line[7:] in ("done", "cancelled", "error"):
                        return
        except urllib.error.HTTPError as error:
            self.tally.record("events", error.code, error.read().decode(errors="replace"))
        except OSError as error:
            self.tally.record("events", 599, str(error))

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                self.step()
            except OSError as error:  # a refused or reset connection is a failure of the page
                self.tally.record("connection", 599, str(error))
                time.sleep(1)
            except Exception as error:  # noqa: BLE001 - a client's own bug must not end the run silently
                self.tally.record("client", 598, f"{type(error).__name__}: {error}")


def warm_up(client: Client) -> None:
    """One of everything the clients do, at low, middle and high notes: models, synth pools,
    the keyboard's voices and the pictures' fonts are loaded before the baseline is read."""
    for kind, note in (("saw", 40), ("square", 57), ("organ", 74)):
        status, body = client.form("match", "/api/match", {}, {"file": ("w.wav", tone_wav(kind, note))})
        if status != 200:
            raise RuntimeError(f"the warm-up match failed: {status} {body[:200]!r}")
        result = json.loads(body)
        client.results.append(result)
        for match in result["matches"][:2]:
            client.call("picture", match["picture_url"])
            for key in (36, 60, 84):
                client.call("keys", f"{match['audio_url']}?note={key}")
    client.form("text", "/api/text", {"text": "warm bass"})
    status, body = client.form("refine", f"/api/results/{client.results[0]['id']}/refine", {"budget": str(REFINE_BUDGET)})
    if status == 200:
        client.follow(json.loads(body))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_load(clients: int, seconds: float, index: Path | None, seed: int = 0) -> dict:
    """Start a server, load it, and return what was measured."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="load-serve-"))
    env = dict(os.environ, TMPDIR=str(tmp))
    command = [sys.executable, "-m", "patchpilot", "serve", "--port", str(port)]
    if index is not None:
        command += ["--index", str(index)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        began = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(base + "/api/status", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() - began > 60:
                    raise RuntimeError(f"the server did not start: {server.stderr.read()[-500:]}") from None
                time.sleep(0.1)
        tally = Tally()
        warm_up(Client(base, Tally(), seed))
        baseline = rss_mb(server.pid)
        peak = baseline
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=Client(base, tally, seed + 1 + n).run, args=(deadline,), daemon=True)
                   for n in range(clients)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(server.pid))
            time.sleep(1.0)
        settle_began = time.monotonic()
        while True:
            status = json.loads(urllib.request.urlopen(base + "/api/status", timeout=10).read())
            if status["refinements_running"] == 0 and status["work"] == 0:
                break
            if time.monotonic() - settle_began > SETTLE_SECONDS:
                break
            time.sleep(0.5)
        settled = time.monotonic() - settle_began
        # read as the baseline was: just after a piece of work ended (the page gives free
        # memory back to the system then, serve/memory.py)
        Client(base, Tally(), seed).form("text", "/api/text", {"text": "warm bass"})
        final = rss_mb(server.pid)
        leftovers = sorted(p.name for p in tmp.iterdir())
        return {"clients": clients, "seconds": seconds, "statuses": dict(sorted(tally.statuses.items())),
                "actions": dict(tally.actions), "answered": dict(tally.answered), "failures": tally.failures,
                "busy_without_retry_after": tally.busy_without_retry_after, "baseline_mb": baseline,
                "peak_mb": peak, "final_mb": final, "growth_mb": final - baseline, "settle_seconds": settled,
                "still_running": status["refinements_running"], "leftovers": leftovers, "alive": server.poll() is None}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def verdict(measured: dict) -> list[str]:
    """What fails the issue's targets (empty when everything holds)."""
    problems = []
    if measured["failures"]:
        problems.append(f"{len(measured['failures'])} 5xx answers other than 503: {measured['failures'][:3]}")
    if measured["busy_without_retry_after"]:
        problems.append(f"{measured['busy_without_retry_after']} 503 answers without Retry-After")
    if measured["growth_mb"] > MAX_RSS_GROWTH_MB:
        problems.append(f"memory grew {measured['growth_mb']:.0f} MB (target <= {MAX_RSS_GROWTH_MB:.0f})")
    if measured["still_running"]:
        problems.append(f"{measured['still_running']} refinements still running {SETTLE_SECONDS:.0f} s after the end")
    if measured["leftovers"]:
        problems.append(f"left in the server's temporary folder: {measured['leftovers'][:5]}")
    if not measured["alive"]:
        problems.append("the server died")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--index", type=Path, default=None, help="default: the index `patchpilot serve` opens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    measured = run_load(args.clients, args.seconds, args.index, args.seed)
    problems = verdict(measured)
    print(json.dumps(measured, indent=1), file=sys.stderr)
    from scripts.bench_match.report import header, write_section

    command = f"python -m scripts.load_serve --clients {args.clients} --seconds {args.seconds:g}" + (
        f" --index {args.index}" if args.index else "")
    statuses = ", ".join(f"{code}: {count}" for code, count in measured["statuses"].items())
    text = (header("The page under load (`patchpilot serve`)", command) + "\n"
            + __doc__.split("\n\n", 2)[2].strip().replace("\n", " ") + "\n\n"
            + "| clients | seconds | answers by status | 5xx other than 503 | memory: baseline / peak / end | "
              "growth (target <= 150 MB) | refinements stopped after the end | left in the temporary folder |\n"
            + "|---|---|---|---|---|---|---|---|\n"
            + f"| {args.clients} | {args.seconds:g} | {statuses} | {len(measured['failures'])} | "
              f"{measured['baseline_mb']:.0f} / {measured['peak_mb']:.0f} / {measured['final_mb']:.0f} MB | "
              f"{measured['growth_mb']:+.0f} MB | all, in {measured['settle_seconds']:.1f} s "
              f"({measured['still_running']} still running) | {len(measured['leftovers'])} |\n\n"
            + f"Actions: {', '.join(f'{k} {v}' for k, v in sorted(measured['actions'].items()))}. "
            + ("Every target holds." if not problems else "MISSED: " + "; ".join(problems)) + "\n")
    if args.no_report:
        print(text)
    else:
        write_section("load", text)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
