"""Presenting results: JSON for pipelines, tables for people.

Nothing here reports what was played (notes, pitches, timing): only how to build the sound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from patchpilot.confidence import CLOSE_MAX_DISTANCE, SIMILAR_MAX_DISTANCE, confidence_label
from patchpilot.export import ExportedFiles
from patchpilot.matching import Match, MatchResult
from patchpilot.matching.similar import SimilarResult
from patchpilot.tweak import TweakResult
from patchpilot.tweak.measure import STEPS
from patchpilot.synths import Param, Preset, get_engine
from patchpilot.synths.params import GROUPS

if TYPE_CHECKING:
    from patchpilot.api import PlotFiles

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(note: int) -> str:
    """Scientific pitch name of a MIDI note (60 is C4)."""
    return f"{_NOTE_NAMES[note % 12]}{note // 12 - 1}"

GROUP_TITLES = {
    "oscillator": "Oscillators",
    "filter": "Filters",
    "envelope": "Envelopes",
    "modulation": "LFO / modulation",
    "fx": "Effects",
    "global": "Global",
}


def match_to_dict(match: Match, exported: ExportedFiles | None = None, *, audition: bool = True,
                  confidence: bool = True) -> dict:
    """One match as JSON. ``audition`` adds how to hear what was scored (the key, velocity and
    hold): never for a song, where that key would be a note of its melody. ``confidence``
    labels an audio match's distance (text queries have a distance of another kind)."""
    preset = match.preset
    engine = get_engine(preset.synth)
    params = engine.params
    document = {
        "rank": match.rank,
        "synth": preset.synth,
        "preset_id": match.preset_id,
        "name": preset.name,
        "category": preset.category,
        "tags": list(preset.tags),
        "distance": round(match.distance, 4),
        "origin": preset.origin,
        "params": engine.native_values(preset),
        "units": {name: p.unit for name, p in params.items() if p.unit},
        "fx": match.fx.to_list(),
        "preset_file": str(exported.preset_file) if exported else None,
        "audio_file": str(exported.audio_file) if exported else None,
        "refined": match.refined,
    }
    if exported and exported.fx_file is not None:
        document["fx_file"] = str(exported.fx_file)
    if exported and exported.fx_preset_file is not None:
        document["preset_with_fx_file"] = str(exported.fx_preset_file)
        document["fx_not_in_preset_with_fx_file"] = list(exported.fx_left_out)
    if exported and exported.fx_plugin_presets:
        document["fx_plugin_preset_files"] = [str(path) for path in exported.fx_plugin_presets]
    if confidence:
        document["confidence"] = confidence_label(match.distance)
    if audition:
        # load the preset file, play this key this hard and this long: the distance is of exactly that
        document["audition"] = {"note": match.render.note, "note_name": note_name(match.render.note),
                                "velocity": match.render.velocity, "hold_seconds": round(match.render.note_seconds, 3)}
    if match.refinement is not None:
        outcome = match.refinement
        document.update({
            "distance_before": round(outcome.distance_before, 4),
            "distance_after": round(outcome.distance_after, 4),
            "evaluations": outcome.evaluations,
            "refined_from": outcome.start_preset_id,
            # the search ran from this match: did it find anything closer?
            "refinement_result": "improved" if match.refined else "no improvement",
        })
    return document


def result_to_dict(result: MatchResult, exports: Mapping[int, ExportedFiles] | None = None,
                   plots: PlotFiles | None = None) -> dict:
    exports = exports or {}
    document: dict = {"input": result.input_name,
                      "matches": [match_to_dict(m, exports.get(m.rank), audition=not result.from_track,
                                                confidence=result.analysis is not None)
                                  for m in result.matches]}
    if plots is not None:
        for entry in document["matches"]:
            if entry["rank"] in plots.matches:
                entry["plot_file"] = str(plots.matches[entry["rank"]])
        if plots.convergence is not None:
            document["refine_plot_file"] = str(plots.convergence)
    warning = rough_warning(result)
    if warning:
        document["warning"] = warning
    query = getattr(result, "query", None)  # text queries: the words understood and ignored
    if query is not None:
        document["query"] = query.to_dict()
    for entry in document["matches"]:  # text queries: what each answer matched on
        matched_on = _matched_on(result, entry["rank"])
        if matched_on:
            entry["matched_on"] = matched_on
    if isinstance(result, SimilarResult) and result.reference is not None and result.played is not None:
        played = result.played
        document["reference"] = {"preset_id": result.reference_id, "synth": result.reference.synth,
                                 "name": result.reference.name, "note": played.note,
                                 "note_name": note_name(played.note), "velocity": played.velocity,
                                 "hold_seconds": round(played.note_seconds, 3)}
    return document


def panel_groups(match: Match) -> list[dict]:
    """The settings off the init patch, grouped by module as the synth's panel names them
    (Oscillator 1, Filter 1, Operator 2...), each with its units, and what a card can draw
    of the module (an envelope, a filter)."""
    engine = get_engine(match.preset.synth)
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, _, text in _off_init(match.preset):
        module = engine.module_of(name)
        label = name[len(module) + 1:] if name.startswith(module + "_") else name
        groups.setdefault(module, []).append((label.replace("_", " "), text))
    native = engine.native_values(match.preset)
    return [{"title": engine.panel_name(module), "module": module, "params": items,
             "drawing": engine.drawing(module, native)} for module, items in groups.items()]


def match_card(result: MatchResult, match: Match) -> dict:
    """One match as a card shows it: the JSON of ``match_to_dict`` with the settings grouped as
    the synth's panel groups them (only those off the init patch), the synth's own name, the
    effect chain in words and the key it was played at (none for a song: its melody)."""
    document = match_to_dict(match, audition=not result.from_track, confidence=result.analysis is not None)
    document.pop("params", None)  # every parameter: the groups hold the ones to set
    document.pop("units", None)
    document.update({
        "synth_name": get_engine(match.preset.synth).display_name,
        "groups": panel_groups(match),
        "fx_text": match.fx.describe() if match.fx else "",
        "note": None if result.from_track else match.render.note,
        "note_name": None if result.from_track else note_name(match.render.note),
        "velocity": None if result.from_track else match.render.velocity,
    })
    matched_on = _matched_on(result, match.rank)
    if matched_on:
        document["matched_on"] = matched_on
    return document


def changed_params(match: Match) -> dict[str, list[tuple[str, str]]]:
    """Parameters that differ from the synth's init patch, grouped, as display strings."""
    grouped: dict[str, list[tuple[str, str]]] = {g: [] for g in GROUPS}
    for name, param, text in _off_init(match.preset):
        grouped[param.group].append((name, text))
    return {g: items for g, items in grouped.items() if items}


def _off_init(preset: Preset) -> Iterator[tuple[str, Param, str]]:
    """Each parameter of ``preset`` that differs from its synth's init patch, with its panel
    value and unit as display text."""
    for name, param in get_engine(preset.synth).params.items():
        raw = preset.values[name]
        if param.clip(raw) == param.clip(param.default):
            continue
        value = param.native(raw)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        yield name, param, f"{text} {param.unit}".strip()


def print_result(console: Console, result: MatchResult, exports: Mapping[int, ExportedFiles] | None = None,
                 *, detail: int = 1, plots: PlotFiles | None = None) -> None:
    """A summary table of the matches, then the settings of the best ``detail`` of them,
    then where the pictures are."""
    exports = exports or {}
    table = Table(title=_title(result), title_justify="left", show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("synth")
    table.add_column("preset")
    table.add_column("category")
    table.add_column("tags")
    table.add_column("distance (lower is closer)", justify="right")
    for match in result.matches:
        preset = match.preset
        table.add_row(str(match.rank), preset.synth, f"{preset.name}  [dim]{match.preset_id}[/dim]",
                      preset.category, ", ".join(preset.tags), _distance_cell(match, result.analysis is not None))
    console.print(table)
    if result.matches:
        console.print(distance_legend(result.analysis is not None), style="dim", highlight=False)
    evidence = getattr(result, "evidence", {})
    for match in result.matches:
        if evidence.get(match.rank):
            said = ", ".join(f"{e.descriptor} {_ordinal(e.percentile)} percentile ({'more' if e.way > 0 else 'less'} asked)"
                             for e in evidence[match.rank])
            console.print(f"  #{match.rank} matched on: {said}", highlight=False)
    for match in result.matches[:detail]:
        print_settings(console, match, exports.get(match.rank))
    if plots is not None and (plots.matches or plots.convergence):
        console.print()
        for rank, path in plots.matches.items():
            console.print(f"  picture #{rank}: {path}", highlight=False)
        if plots.convergence is not None:
            console.print(f"  refinement: {plots.convergence}", highlight=False)


def _matched_on(result: MatchResult, rank: int) -> dict:
    """A text answer's evidence: each asked descriptor's way, value and percentile."""
    return {e.descriptor: {"asked": "more" if e.way > 0 else "less", "value": round(e.value, 3),
                           "percentile": e.percentile} for e in getattr(result, "evidence", {}).get(rank, ())}


def _ordinal(percentile: float) -> str:
    number = int(round(percentile))
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _title(result: MatchResult) -> str:
    if isinstance(result, SimilarResult) and result.played is not None:
        played = result.played
        named = f"{result.input_name} ({result.reference_id})" if result.reference_id else result.input_name
        return f"Presets like {named}, played at {note_name(played.note)} velocity {played.velocity}"
    return f"Matches for {result.input_name}"


def distance_legend(labelled: bool) -> str:
    """What the distance column means, under the table."""
    if not labelled:  # text queries: a ranking score of the words, not a sound's distance
        return "distance: how far the preset's sound descriptors are from the words (lower fits better)"
    return ("distance: how far the match, played from its preset file, sounds from the input "
            f"(0 is the same sound). close (up to {CLOSE_MAX_DISTANCE:g}): like the same preset at another note; "
            f"similar (up to {SIMILAR_MAX_DISTANCE:g}): usually the right family; rough: a starting point only.")


def _distance_cell(match: Match, labelled: bool) -> str:
    label = confidence_label(match.distance) if labelled else ""
    if match.refinement is None:
        return f"{match.distance:.3f} {label}".strip()
    if not match.refined:  # the refinement started here and found nothing closer
        return f"{match.distance:.3f} {label} (refined: no improvement)".strip()
    # the refinement's own loss (its notes, its rate) is another scale than the distance the label reads
    return (f"{match.distance:.3f} {label} (refinement loss {match.refinement.distance_before:.3f} -> "
            f"{match.refinement.distance_after:.3f})")


def rough_warning(result: MatchResult) -> str | None:
    """One line when even the best answer of an audio match is rough (None otherwise)."""
    if result.analysis is None or not result.matches:
        return None
    best = min(m.distance for m in result.matches)
    if confidence_label(best) != "rough":
        return None
    return (f"no close match: the best answer is rough (distance {best:.2f}); "
            "treat it as a starting point, not as the sound")


def print_settings(console: Console, match: Match, exported: ExportedFiles | None = None) -> None:
    preset = match.preset
    engine = get_engine(preset.synth)
    console.print()
    console.print(f"[bold]#{match.rank} {preset.name}[/bold] on {engine.display_name}: "
                  f"start from the init patch and set")
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2))
    table.add_column("group", style="bold")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for group, items in changed_params(match).items():
        for i, (name, value) in enumerate(items):
            table.add_row(GROUP_TITLES[group] if i == 0 else "", name, value)
    console.print(table)
    if match.fx:
        console.print(f"  [bold]then through[/bold] {match.fx.describe()}", highlight=False)
    if exported:
        console.print(f"  preset file: {exported.preset_file}")
        if exported.fx_file is not None:
            console.print(f"  effects:     {exported.fx_file} (patchpilot render --fx loads it)")
        if exported.fx_preset_file is not None:
            missing = f"; without {', '.join(exported.fx_left_out)}" if exported.fx_left_out else ""
            console.print(f"  with effects: {exported.fx_preset_file} (the chain in the synth's own effects, "
                          f"alike rather than the same{missing})", highlight=False)
        for path in exported.fx_plugin_presets:
            console.print(f"  plugin state: {path} (load it in your copy of the plugin)", highlight=False)
        console.print(f"  audio:       {exported.audio_file}")


def print_preset_list(console: Console, rows: Sequence[dict], *, sources: bool = False) -> None:
    """The presets of an index; ``sources``: with the file each user preset came from."""
    table = Table(show_edge=False)
    columns = ("preset_id", "synth", "name", "category", "tags") + (("source",) if sources else ())
    for column in columns:
        table.add_column(column)
    for row in rows:
        cells = [row["preset_id"], row["synth"], row["name"], row["category"], ", ".join(row["tags"])]
        table.add_row(*cells, *([row.get("source", row["origin"])] if sources else []))
    console.print(table)


def tweak_to_dict(result: TweakResult, exported: ExportedFiles | None = None) -> dict:
    """A tweak as JSON: each word's move in noticeable steps, every descriptor before and
    after, how far the sound moved, and the settings changed (panel values)."""
    document = {
        "preset": result.start.name, "synth": result.start.synth, "words": result.words,
        "tweaked": result.preset.name, "note": result.note, "note_name": note_name(result.note),
        "velocity": result.velocity,
        "moves": [{"word": m.word, "descriptor": m.descriptor, "asked": "more" if m.way > 0 else "less",
                   "asked_steps": round(m.asked_steps, 2), "moved_steps": round(m.moved_steps, 2),
                   "reached": m.reached, "at_limit": m.at_limit} for m in result.moves],
        "descriptors": {name: {"before": round(result.before[name], 3), "after": round(result.after[name], 3),
                               "steps": round((result.after[name] - result.before[name]) / STEPS[name], 2)}
                        for name in result.before},
        "distance_moved": round(result.distance, 4),
        "changed": {name: {"before": before, "after": after} for name, (before, after) in result.changed.items()},
        "ignored": list(result.ignored),
        "params": get_engine(result.preset.synth).native_values(result.preset),
    }
    if exported is not None:
        document["preset_file"], document["audio_file"] = str(exported.preset_file), str(exported.audio_file)
    return document


def print_tweak(console: Console, result: TweakResult, exported: ExportedFiles | None = None) -> None:
    """What each word did, what else moved, and the settings to change."""
    table = Table(title=f"{result.start.name}: {result.words} (measured at {note_name(result.note)}, velocity "
                        f"{result.velocity})", title_justify="left", show_edge=False)
    for column, justify in (("asked", "left"), ("descriptor", "left"), ("moved (noticeable steps)", "right"),
                            ("", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for move in result.moves:
        verdict = ("done" if move.reached else "already at its limit" if move.at_limit
                   else "too little" if move.way * move.moved_steps > 0 else "not moved")
        table.add_row(move.word, f"{'more' if move.way > 0 else 'less'} {move.descriptor}",
                      f"{move.moved_steps:+.1f}", verdict)
    console.print(table)
    asked = {m.descriptor for m in result.moves}
    others = [f"{name} {(result.after[name] - result.before[name]) / STEPS[name]:+.1f}" for name in result.before
              if name not in asked and abs(result.after[name] - result.before[name]) >= STEPS[name]]
    console.print(f"also moved: {', '.join(others) if others else 'nothing else by a noticeable step'}; the sound "
                  f"moved {result.distance:.3f} (match's distance)", highlight=False)
    if result.ignored:
        console.print(f"ignored: {', '.join(result.ignored)}", style="dim", highlight=False)
    if result.changed:
        console.print(f"[bold]{result.preset.name}[/bold]: change", highlight=False)
        params = get_engine(result.preset.synth).params
        for name, (before, after) in result.changed.items():
            unit = params[name].unit
            console.print(f"  {name:28s} {before} -> {after} {unit}".rstrip(), highlight=False)
    else:
        console.print("no setting of this preset moves it that way: nothing changed", highlight=False)
    if exported is not None:
        console.print(f"  preset: {exported.preset_file}\n  audio:  {exported.audio_file}", highlight=False)
