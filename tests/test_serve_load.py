"""The page under load in CI: ``python -m scripts.load_serve`` for a short while on the tiny index
(20 clients). Nothing but a deliberate 503 (with Retry-After) may fail, every refinement stops
once its clients are gone (those that left mid-way included), uploads leave nothing behind,
and the server lives. Memory is a benchmark figure (docs/BENCHMARKS.md), not asserted here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("matplotlib", reason="the plot extra is not installed")

pytestmark = pytest.mark.slow


def test_twenty_clients_get_answers_or_a_polite_503_and_leave_nothing_running(tiny_index: Path) -> None:
    load = importlib.import_module("scripts.load_serve")  # ``python -m scripts.load_serve``
    measured = load.run_load(clients=20, seconds=20, index=tiny_index, seed=1)
    # uploads were matched and matches played, not only turned away (how many depends on the machine's speed)
    answered = measured["answered"]
    assert answered.get("match", 0) >= 1 and answered.get("keys", 0) + answered.get("picture", 0) >= 1, measured
    assert not measured["failures"] and not measured["busy_without_retry_after"], measured
    assert measured["still_running"] == 0 and not measured["leftovers"] and measured["alive"], measured
    assert sum(measured["actions"].get(a, 0) for a in ("match", "keys", "refine", "text", "picture")) > 40
