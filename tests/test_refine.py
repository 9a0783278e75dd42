"""Refinement: the search space, fit notes, CMA-ES pulling a perturbed preset back, the CLI."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from patchpilot.api import PatchPilot
from patchpilot.audio.analysis import analyse_clip
from patchpilot.audio.io import Audio
from patchpilot.cli import app
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import PerceptualDistance
from patchpilot.errors import PatchPilotWarning
from patchpilot.export import EXPORT_TAIL_SECONDS
from patchpilot.fx import FxChain, load_chain
from patchpilot.library.bank import load_factory_bank
from patchpilot.matching import Match, Matcher, RenderSettings
from patchpilot.refine import (RefineOptions, RefineOutcome, Refiner, SearchSpace, StartPoint, fit_notes_for,
                               refiner_for)
from patchpilot.synths import RenderPool, get_engine
from patchpilot.synths.base import from_native_rate

SR = ANALYSIS_SAMPLE_RATE_HZ


def _preset(banks: Path, synth: str, name: str):
    return next(p for p in load_factory_bank(synth, banks) if p.name == name)


def test_search_space_round_trips_the_start_and_stays_in_musical_ranges(tiny_banks: Path) -> None:
    for synth, name in (("vital", "Test Pluck"), ("dexed", "Test Bell")):
        engine = get_engine(synth)
        start = _preset(tiny_banks, synth, name)
        space = SearchSpace(engine, start)
        assert space.dim > 5
        assert all(engine.params[n].kind == "continuous" for n in space.names)
        # the pitch is the match's: transposes, tunes and modulations into them are held,
        # and on the DX7 its operators' detune and the pitch envelope's levels (Vital's
        # unison detune is a timbre: it may move)
        held = ("_transpose", "_tune", "_detune") if synth == "dexed" else ("_transpose", "_tune")
        assert not [n for n in space.names if n.endswith(held) or n.startswith("pitch_eg_level_")]
        again = space.preset(space.start_vector())
        for n in space.names:
            assert again.values[n] == pytest.approx(engine.params.complete(start.values)[n], abs=1e-6)
        values = engine.params.complete(start.values)
        for corner in (np.zeros(space.dim), np.ones(space.dim)):
            moved = space.preset(corner)
            for n in space.names:
                low, high = engine.params[n].search_range
                assert min(low, values[n]) - 1e-9 <= moved.values[n] <= max(high, values[n]) + 1e-9
            # choices and switches are never searched
            for n in engine.params.names("choice") + engine.params.names("switch"):
                assert moved.values.get(n) == start.values.get(n)


def test_fit_notes_take_distinct_pitches_played_the_same_interval_away(tiny_banks: Path) -> None:
    engine = get_engine("dexed")
    organ = _preset(tiny_banks, "dexed", "Test Organ")
    gap = np.zeros(int(0.3 * SR), dtype=np.float32)
    parts = []
    for note in (60, 67, 60, 55):
        parts += [engine.render(organ, note, 100, 0.6, 0.8, sample_rate=SR), gap]
    analysis = analyse_clip(Audio(np.concatenate(parts), SR, "phrase"))
    fits = fit_notes_for(analysis, note=72, velocity=90, note_seconds=0.5, distance=PerceptualDistance(SR))
    played = sorted(f.note for f in fits)
    best = round(analysis.best.pitch.midi)
    # three distinct pitches (the repeated 60 counts once), each shifted like the best note (+12 here)
    assert len(fits) == 3
    assert played == sorted(72 + p - best for p in (55, 60, 67))
    assert fits[0].note == 72 and fits[0].velocity == 90 and fits[0].note_seconds == 0.5


def test_cma_es_pulls_a_perturbed_preset_back_toward_itself(tiny_banks: Path) -> None:
    """The known-answer case: render a preset, move some of its parameters away, and search
    those parameters from there: the distance falls and the parameters come back."""
    engine = get_engine("dexed")
    truth = _preset(tiny_banks, "dexed", "Test Organ")
    audio = engine.render(truth, 60, 100, 0.8, 1.1, sample_rate=SR)
    distance = PerceptualDistance(SR)
    fits = fit_notes_for(analyse_clip(Audio(audio, SR, "organ")), 60, 100, 0.8, distance)
    names = ("op2_output_level", "op3_output_level", "op1_eg_rate_1")
    space = SearchSpace(engine, truth, names)
    unit = space.start_vector()
    away = unit - 0.15
    start = space.preset(away)

    with RenderPool(engine, 2) as pool:
        outcome = Refiner(lambda _: pool, distance).refine([StartPoint(start, "start", fits)],
                                                           RefineOptions(budget=150, seed=1, only=names))
    assert outcome.improved
    assert outcome.distance_after < 0.5 * outcome.distance_before
    assert 0 < outcome.evaluations <= 150 + 10  # the last generation may overshoot
    refined_unit = (np.array([outcome.preset.values[n] for n in names]) - space.low) / space.span
    assert np.abs(refined_unit - unit).mean() < 0.5 * np.abs(away - unit).mean()


def test_a_time_limit_stops_the_search_early(tiny_banks: Path) -> None:
    engine = get_engine("dexed")
    preset = _preset(tiny_banks, "dexed", "Test Organ")
    audio = engine.render(preset, 57, 100, 0.8, 1.2, sample_rate=SR)
    distance = PerceptualDistance(SR)
    fits = fit_notes_for(analyse_clip(Audio(audio, SR, "organ")), 57, 100, 0.8, distance)
    with RenderPool(engine, 2) as pool:
        outcome = Refiner(lambda _: pool, distance).refine(
            [StartPoint(preset, "organ", fits)], RefineOptions(budget=100_000, time_limit_seconds=0.5))
    assert outcome.evaluations < 2_000
    # the exact preset cannot be beaten: it stays the answer
    assert outcome.distance_after <= outcome.distance_before


def test_refined_match_comes_first_and_its_export_plays_what_it_reports(tiny_index: Path, tiny_banks: Path,
                                                                        tmp_path: Path) -> None:
    # the index's organ with its drawbars moved: a sound the index lacks, that the search can reach
    organ = next(p for p in load_factory_bank("dexed", tiny_banks) if p.name == "Test Organ")
    variant = organ.with_values({"op2_output_level": 66, "op3_output_level": 84})
    wav = tmp_path / "organ-variant.wav"
    soundfile.write(wav, get_engine("dexed").render(variant, 66, 80, 1.2, 1.8, sample_rate=44100), 44100)
    with PatchPilot(tiny_index) as pilot:
        # at the analysis rate: a short search finds a closer organ there (at 44.1 kHz a budget
        # of 60 does not; the full-rate path is checked in test_fidelity)
        result = pilot.match(wav, top_k=2, synth="dexed", full_band=False)
        refined = pilot.refine(result, RefineOptions(budget=60, seed=0))
        exports = pilot.export(refined, tmp_path)
    first = refined.matches[0]
    assert first.refined and first.refinement is not None
    # the search starts from the match as the user hears it: through its effect chain
    origin = next(m for m in result.matches if m.preset_id == first.refinement.start_preset_id)
    assert origin.fx, "the organ with its drawbars moved is answered with an effect: this test needs one"
    assert first.refinement.distance_before == pytest.approx(origin.distance, abs=1e-4)
    assert [m.rank for m in refined.matches] == list(range(1, len(refined.matches) + 1))
    engine = get_engine("dexed")
    (loaded,) = engine.read_presets(exports[1].preset_file)
    chain = load_chain(exports[1].fx_file) if exports[1].fx_file else FxChain()
    audio, _ = soundfile.read(exports[1].audio_file, dtype="float32")
    again = engine.render(loaded, first.render.note, first.render.velocity, first.render.note_seconds,
                          first.render.total_seconds + EXPORT_TAIL_SECONDS, sample_rate=44100)
    assert np.array_equal(audio, chain.apply(again, 44100))
    # the distance reported is that of the exported files, played as the user will, on the input's note
    note, rate = result.analysis.best, Matcher.heard_rate(result.analysis)  # as the matches were confirmed
    played = from_native_rate(chain.apply(engine.render(loaded, first.render.note, first.render.velocity,
                                                        first.render.note_seconds, first.render.total_seconds,
                                                        sample_rate=44100), 44100), rate, first.render.total_seconds)
    distance = PerceptualDistance(rate)
    target = distance.prepare_target(Matcher.compared(result.analysis, note, rate),
                                     noise=Matcher.noise_of(result.analysis, note, rate))
    assert float(distance.score(target, [played])[0]) == pytest.approx(first.distance, abs=1e-4)


def test_cli_refine_json_reports_the_search(tiny_index: Path, pluck_wav: Path) -> None:
    result = CliRunner().invoke(app, ["match", str(pluck_wav), "--index", str(tiny_index), "--json", "--top-k", "2",
                                      "--synth", "vital", "--refine", "--budget", "24"])
    assert result.exit_code == 0, result.stderr
    matches = json.loads(result.stdout)["matches"]
    (searched,) = [m for m in matches if "evaluations" in m]  # the one match the search ran from or made
    assert searched["evaluations"] > 0 and searched["refined_from"].startswith("vital:")
    if searched["refined"]:  # a refined preset comes first, closer than where it started
        assert searched["rank"] == 1 and searched["refinement_result"] == "improved"
        assert searched["distance_after"] < searched["distance_before"]
    else:  # nothing closer was found: said so, never "refined" with an unchanged distance
        assert searched["refinement_result"] == "no improvement"
        assert searched["distance_after"] == searched["distance_before"] == searched["distance"]
    assert all(m["refined"] is False for m in matches if m is not searched)


def test_a_refinement_that_finds_nothing_closer_is_not_called_refined() -> None:
    from patchpilot.report import _distance_cell, match_to_dict

    engine = get_engine("dexed")
    preset = engine.init_preset()
    outcome = RefineOutcome(preset, "dexed:1", distance_before=0.5, distance_after=0.5, evaluations=200,
                            seconds=1.0, render_seconds=0.5, loss_seconds=0.1)
    render = RenderSettings(note=60, velocity=100, note_seconds=1.0, total_seconds=1.5)
    match = Match(rank=1, preset_id="dexed:1", preset=preset, distance=0.5, retrieval_distance=None, render=render,
                  refinement=outcome)
    document = match_to_dict(match, confidence=True)
    assert document["refined"] is False and document["refinement_result"] == "no improvement"
    assert "no improvement" in _distance_cell(match, labelled=True)
    better = replace(match, refinement=replace(outcome, distance_after=0.4), distance=0.4)
    assert match_to_dict(better)["refined"] is True and "0.500 -> 0.400" in _distance_cell(better, labelled=True)


def test_refine_with_text_is_a_usage_error(tiny_index: Path) -> None:
    result = CliRunner().invoke(app, ["match", "--text", "bright pluck", "--index", str(tiny_index), "--refine"])
    assert result.exit_code == 2
    assert "--refine" in result.stderr and "Traceback" not in result.stderr


def test_fit_targets_run_into_the_quiet_after_a_note_but_not_into_the_next(tiny_banks: Path) -> None:
    from patchpilot.audio.analysis import TAIL_SECONDS, note_with_tail

    engine = get_engine("dexed")
    organ = _preset(tiny_banks, "dexed", "Test Organ")
    note = engine.render(organ, 60, 100, 0.6, 0.7, sample_rate=SR)
    quiet = np.zeros(int(1.0 * SR), dtype=np.float32)
    lone = analyse_clip(Audio(np.concatenate([note, quiet]), SR, "lone"))
    extended = note_with_tail(lone, lone.best)
    assert extended.size - lone.best.samples.size == pytest.approx(TAIL_SECONDS * SR, abs=SR * 0.02)

    close = np.zeros(int(0.2 * SR), dtype=np.float32)
    pair = analyse_clip(Audio(np.concatenate([note, close, engine.render(organ, 67, 100, 0.6, 0.7, sample_rate=SR)]),
                              SR, "pair"))
    first = min(pair.notes, key=lambda n: n.start)
    extended = note_with_tail(pair, first)
    assert first.samples.size < extended.size
    assert first.start * SR + extended.size <= note.size + close.size  # stops before the next note begins


def test_discrete_trials_take_the_donors_choices_first_then_flips_and_sweeps(tiny_banks: Path) -> None:
    from patchpilot.refine import discrete_trials

    engine = get_engine("vital")
    params = engine.params
    base = _preset(tiny_banks, "vital", "Test Pluck")  # osc 1 Saw through filter 1; oscs 2, 3 off
    donor = _preset(tiny_banks, "vital", "Test Pad").with_values(
        {"osc_1_transpose": 12.0, "filter_1_model": params["filter_1_model"].parse("Ladder")})
    values, other = params.complete(base.values), params.complete(donor.values)
    trials = discrete_trials(engine, base, [donor])
    assert trials and len(trials) == len({tuple(sorted(t.items())) for t in trials})
    # no trial leaves the base as it is
    assert all(any(abs(v - values[n]) > 1e-9 for n, v in t.items()) for t in trials)
    # first: the donor's choices, module by module (osc 1's wavetable; filter 1's model and switch)
    first = trials[0]
    assert first == {"osc_1_wavetable": other["osc_1_wavetable"]}
    assert {"filter_1_on": 0.0, "filter_1_model": other["filter_1_model"]} in trials[:5]
    # every switch flipped once
    for name in params.names("switch"):
        assert {name: 1.0 - values[name]} in trials
    # a whole-module swap brings the donor's settings but never its pitch
    whole = [t for t in trials if "osc_1_wavetable" in t and "osc_1_wave_frame" in t]
    assert whole and all("osc_1_transpose" not in t and "osc_1_tune" not in t for t in whole)
    # swept options only where the module sounds: osc 1's wavetables, not osc 2's (off)
    tables = {t["osc_1_wavetable"] for t in trials if set(t) == {"osc_1_wavetable"}}
    assert len(tables) == len(params["osc_1_wavetable"].options) - 1
    assert not any(set(t) == {"osc_2_wavetable"} for t in trials)
    # the donor's choices come before the flips (a flip the donor also has counts as the donor's)
    flips = [{n: 1.0 - values[n]} for n in params.names("switch") if other[n] == values[n]]
    first_flip = min(trials.index(f) for f in flips)
    assert first_flip >= 2 and all(other[n] == v for t in trials[:first_flip] for n, v in t.items())


def test_the_discrete_stage_finds_the_algorithm_a_continuous_search_cannot(tiny_banks: Path) -> None:
    """Known answer: an organ played with the wrong DX7 algorithm. No continuous parameter is
    searched (``only=()``), so only the discrete stage can bring the organ back."""
    engine = get_engine("dexed")
    params = engine.params
    truth = _preset(tiny_banks, "dexed", "Test Organ")
    audio = engine.render(truth, 60, 100, 0.8, 1.1, sample_rate=SR)
    distance = PerceptualDistance(SR)
    fits = fit_notes_for(analyse_clip(Audio(audio, SR, "organ")), 60, 100, 0.8, distance)
    right = params["algorithm"].parse("32")
    start = truth.with_values({"algorithm": params["algorithm"].parse("1")})
    donor = _preset(tiny_banks, "dexed", "Test Brass").with_values({"algorithm": right})
    starts = [StartPoint(start, "start", fits), StartPoint(donor, "donor", fits)]

    with RenderPool(engine, 2) as pool:
        refiner = Refiner(lambda _: pool, distance)
        fixed = refiner.refine(starts, RefineOptions(budget=200, starts=1, only=(), discrete=False, hold=False))
        outcome = refiner.refine(starts, RefineOptions(budget=200, starts=1, only=(), discrete=True, hold=False))
    assert fixed.preset.values["algorithm"] != right and not fixed.discrete_changes
    assert outcome.start_preset_id == "start"
    assert outcome.preset.values["algorithm"] == right
    assert "algorithm" in outcome.discrete_changes
    assert outcome.distance_after < 0.5 * outcome.distance_before
    assert outcome.evaluations <= 200


def test_the_hold_search_finds_the_note_off_the_match_misread(tiny_banks: Path) -> None:
    """Known answer: the organ was held 0.8 s, the match says 0.3 s. No parameter is searched,
    only the hold: it comes back near 0.8 s, and the distance falls."""
    engine = get_engine("dexed")
    organ = _preset(tiny_banks, "dexed", "Test Organ")
    audio = engine.render(organ, 60, 100, 0.8, 1.4, sample_rate=SR)
    distance = PerceptualDistance(SR)
    fits = fit_notes_for(analyse_clip(Audio(audio, SR, "organ")), 60, 100, 0.3, distance)
    with RenderPool(engine, 2) as pool:
        refiner = Refiner(lambda _: pool, distance)
        fixed = refiner.refine([StartPoint(organ, "organ", fits)], RefineOptions(budget=80, only=(), hold=False))
        outcome = refiner.refine([StartPoint(organ, "organ", fits)], RefineOptions(budget=80, only=(), hold=True))
    assert fixed.hold_ratio == 1.0 and not fixed.improved
    assert outcome.improved and outcome.distance_after < 0.5 * outcome.distance_before
    assert 0.3 * outcome.hold_ratio == pytest.approx(0.8, rel=0.15)


def test_a_refinement_that_does_not_beat_the_first_match_leaves_the_ranks_alone(
        tiny_index: Path, organ_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.refine import RefineOutcome

    with PatchPilot(tiny_index) as pilot:
        result = pilot.match(organ_wav, top_k=3, synth="dexed")
        first, second = result.matches[:2]
        assert first.distance < second.distance
        # the search claims to have improved on the second match but hands back that preset
        # unchanged: played as the answer it is still further than the first match, so
        # nothing is refined and the second match must not be promoted over the first
        claim = RefineOutcome(second.preset, second.preset_id, 1.0, 0.5, 10, 0.1, 0.1, 0.0)
        monkeypatch.setattr(Refiner, "refine", lambda self, starts, options, progress=None, cancel=None: claim)
        refined = pilot.refine(result, RefineOptions(budget=10))
    assert [m.preset_id for m in refined.matches] == [m.preset_id for m in result.matches]
    assert [m.rank for m in refined.matches] == [1, 2, 3]
    assert refined.matches[0].refinement is None and refined.matches[1].refinement is not None


def test_a_full_band_refinement_scores_the_same_stretch_of_the_44k_copy(tiny_index: Path, organ_wav: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.audio.analysis import note_with_tail

    organ, rate = soundfile.read(organ_wav, dtype="float32")
    late = tmp_path / "late-organ.wav"  # starts 0.3 s in: the note's start must be scaled
    late_samples = np.concatenate([np.zeros(int(0.3 * rate), np.float32), organ])
    soundfile.write(late, late_samples, rate, subtype="FLOAT")
    with PatchPilot(tiny_index) as pilot:
        result = pilot.match(late, top_k=2, synth="dexed", full_band=True)
        refiner = refiner_for(pilot.matcher, result.analysis, full_band=True)
        default = refiner_for(pilot.matcher, result.analysis)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            refined = pilot.refine(result, RefineOptions(budget=24, seed=0, full_band=True))
        without_copy = pilot.match(late, top_k=2, synth="dexed", full_band=False)
        with pytest.warns(PatchPilotWarning, match="no full-band copy"):
            pilot.refine(without_copy, RefineOptions(budget=8, seed=0, full_band=True))
        # by default: on the copy where there is one, at the analysis rate (silently) where not
        rates: list[int] = []
        def spy(matcher, analysis, full_band=False):
            made = refiner_for(matcher, analysis, full_band)
            rates.append(made.distance.sample_rate)
            return made

        monkeypatch.setattr("patchpilot.refine.matches.refiner_for", spy)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pilot.refine(result, RefineOptions(budget=8, seed=0))
            pilot.refine(without_copy, RefineOptions(budget=8, seed=0))
            pilot.refine(result, RefineOptions(budget=8, seed=0, full_band=False))
    assert rates == [44100, SR, SR]
    analysis = result.analysis
    assert analysis.full_band is not None and refiner.distance.sample_rate == 44100
    assert default.distance.sample_rate == SR  # refiner_for's own default: the analysis rate
    assert next(m.refinement for m in refined.matches if m.refinement).evaluations > 0
    note = analysis.best
    assert note.start == pytest.approx(0.3, abs=0.03)
    low, high = note_with_tail(analysis, note), note_with_tail(analysis, note, 44100)
    assert high.size == pytest.approx(2 * low.size, abs=2)
    start = round(note.start * 44100)
    assert np.array_equal(high, late_samples[start:start + high.size])  # the input's own samples, not resampled
    # the loss hears a partial at 15 kHz added to the note, where the analysis rate cannot
    t = np.arange(high.size) / 44100
    bright = high + 0.2 * np.sqrt(np.mean(high ** 2)) * np.sin(2 * np.pi * 15000 * t).astype(np.float32)
    full = refiner.distance(high, [high, bright])
    assert full[0] < 1e-6 and full[1] > 0.05


def test_a_search_that_trades_one_view_of_the_spectrum_for_the_other_keeps_the_start(tiny_banks: Path) -> None:
    """A loss that rewards moving away on the mel view (a negative weight) finds presets
    closer by its sum that are further on that view: none of them is kept, the start is."""
    engine = get_engine("dexed")
    truth = _preset(tiny_banks, "dexed", "Test Organ")
    audio = engine.render(truth, 60, 100, 0.8, 1.1, sample_rate=SR)
    trading = PerceptualDistance(SR, {"log_mel": -3.0, "stft": 1.0})
    fits = fit_notes_for(analyse_clip(Audio(audio, SR, "organ")), 60, 100, 0.8, trading)
    names = ("op2_output_level", "op3_output_level", "op1_eg_rate_1", "op2_eg_rate_1")
    space = SearchSpace(engine, truth, names)
    start = space.preset(space.start_vector() - 0.1)
    with RenderPool(engine, 2) as pool:
        refiner = Refiner(lambda _: pool, trading)
        outcome = refiner.refine([StartPoint(start, "start", fits)], RefineOptions(budget=120, seed=1, only=names))
        # presets closer by the loss's own sum exist (the organ itself is one)
        searched = refiner.fresh_distance([start, space.preset(space.start_vector())], fits)
    assert searched[1] < searched[0]
    heard = PerceptualDistance(SR)
    renders = [engine.render(p, 60, 100, 0.8, 1.1, sample_rate=SR) for p in (start, outcome.preset)]
    _, terms = heard.score_terms(heard.prepare_target(audio), renders)
    assert terms["log_mel"][1] <= terms["log_mel"][0] and terms["stft"][1] <= terms["stft"][0]
