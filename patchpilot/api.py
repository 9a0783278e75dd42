"""The library API behind the CLI: one object that opens an index once and serves queries.

    from patchpilot.api import PatchPilot, SeparationOptions
    pilot = PatchPilot()                       # the default index
    result = pilot.match("sound.wav", top_k=3)
    song = pilot.match("https://example.com/song.mp3", separation=SeparationOptions(stem="bass"))
    for m in result.matches:
        print(m.preset.name, m.distance)
    pilot.match_text("dark evolving pad")       # text queries (same result shape)
    pilot.build_index(BuildRequest(presets=(Path("my_banks"),)))  # add your presets
"""

from __future__ import annotations

import re
import threading
import warnings
from typing import TYPE_CHECKING
from contextlib import ExitStack
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from patchpilot.audio.content import looks_like_song
from patchpilot.audio.fetch import fetched_audio, is_url
from patchpilot.audio.io import Audio, load_audio, load_clip, resample
from patchpilot.audio.segment import select_track_notes
from patchpilot.audio.separate import DemucsNotInstalledError, Progress, SeparationOptions, StemSeparator
from patchpilot.constants import (
    ANALYSIS_SAMPLE_RATE_HZ,
    DEFAULT_DEMUCS_MODEL,
    DEFAULT_RERANK_CANDIDATES,
    DEFAULT_TOP_K,
    DEFAULT_VELOCITY,
    EXPORT_SAMPLE_RATE_HZ,
)
from patchpilot.distance import PerceptualDistance
from patchpilot.embed import DEFAULT_EMBEDDER, get_embedder
from patchpilot.embed.clap import ClapEmbedder
from patchpilot.errors import PatchPilotWarning, PresetError, UsageError
from patchpilot.fx import FxChain
from patchpilot.fx.plugin import plugin_effect_kind
from patchpilot.export import (
    EXPORT_TAIL_SECONDS,
    Deliverables,
    ExportedFiles,
    export_preset,
    play_exported,
    prepare_directory,
)
from patchpilot.index.batches import ProgressCallback
from patchpilot.index.builder import BuildReport
from patchpilot.index.index import PresetIndex
from patchpilot.index.manage import BuildRequest, build_index, describe_index
from patchpilot.library.bank import slug
from patchpilot.matching import Match, Matcher, MatchResult
from patchpilot.paths import default_index_dir
from patchpilot.refine import RefineCancelled, RefineOptions, RefineProgress, refine_result
from patchpilot.report import match_card, note_name, tweak_to_dict
from patchpilot.synths import Preset, get_engine
from patchpilot.synths.registry import (BUILTIN, PLUGIN_PRESET_SUFFIXES, is_plugin_synth, preset_file_suffixes,
                                        synth_for_file)
from patchpilot.synths.base import from_native_rate
from patchpilot.matching.similar import SIMILAR_NOTE_SECONDS, SIMILAR_TOTAL_SECONDS, SimilarResult, similar_presets
from patchpilot.matching.text import TextMatcher, TextMatchResult
from patchpilot.tweak import TweakedResult, TweakResult, Tweaker, as_result, word_moves

if TYPE_CHECKING:
    from patchpilot.corpus import CorpusReport, CorpusRequest
    from patchpilot.plots import ConvergencePoint, Picture

#: What callers of the library need besides the facade: its requests, results and errors.
__all__ = ["BuildRequest", "Match", "MatchResult", "PatchPilot", "PlotFiles", "RefineCancelled", "RefineOptions",
           "SeparationOptions", "SimilarResult", "TextMatchResult", "TweakResult", "TweakedResult"]


@dataclass(frozen=True)
class PlotFiles:
    """The pictures :meth:`PatchPilot.plot` wrote: one per match rank, and the refinement's."""

    matches: dict[int, Path]
    convergence: Path | None = None


class PatchPilot:
    """Matching, rendering and export against one index."""

    def __init__(self, index: Path | str | None = None, *, workers: int = 2, embedder: str | None = None,
                 clap_checkpoint: Path | str | None = None, proposals: bool = False, fx: bool = True,
                 fx_plugins: Sequence[str | Path] = ()) -> None:
        """``embedder`` ("timbre" or "clap") must be the one the index was built with; by
        default audio uses the built-in embedder and text the index's own path.
        ``proposals``: the neural proposals join the retrieval candidates (``proposal.py``).
        ``fx``: the best answers get the effect chain that brings them closest (``fx/``);
        ``fx_plugins``: VST3 effects (names or paths) the chain may use besides the built-in
        ones, loaded now (a missing one is a PluginLoadError)."""
        self.explicit_index = Path(index) if index is not None else None
        self.index_path = self.explicit_index if self.explicit_index is not None else default_index_dir()
        self.workers = workers
        self.embedder_name = embedder
        self.clap_checkpoint = clap_checkpoint
        self.proposals = proposals
        self.fx = fx
        if fx_plugins and not fx:
            raise UsageError("VST3 effects for the chain need the effect chain on (drop --no-fx)")
        self.fx_plugins = tuple(dict.fromkeys(plugin_effect_kind(reference) for reference in fx_plugins))
        self._separators: dict[tuple[str, Path | None], StemSeparator] = {}

    @cached_property
    def index(self) -> PresetIndex:
        return PresetIndex.open(self.index_path, embedder=self.embedder_name)

    @cached_property
    def matcher(self) -> Matcher:
        embedder = get_embedder(self.embedder_name or DEFAULT_EMBEDDER, clap_checkpoint=self.clap_checkpoint)
        return Matcher(self.index, embedder=embedder, workers=self.workers, proposals=self.proposals, fx=self.fx,
                       fx_plugins=self.fx_plugins)

    @cached_property
    def text_matcher(self) -> TextMatcher:
        """CLAP text embeddings on an index built with CLAP, descriptors on any other."""
        clap = None
        if self.index.manifest.embedder.split("/")[0] == "clap":
            clap = ClapEmbedder(checkpoint=self.clap_checkpoint)
            self.index.check_embedder(clap.identity)
        return TextMatcher(self.index, clap=clap)

    def close(self) -> None:
        if "matcher" in self.__dict__:
            self.matcher.close()
        if "index" in self.__dict__:
            self.index.close()
        for name in ("matcher", "text_matcher", "index"):
            self.__dict__.pop(name, None)

    def __enter__(self) -> PatchPilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- matching ---------------------------------------------------------------------
    def match(self, source: str | Path | bytes, *, top_k: int = DEFAULT_TOP_K, synth: str | None = None,
              candidates: int = DEFAULT_RERANK_CANDIDATES, name: str | None = None,
              separation: SeparationOptions | None = None, progress: Progress | None = None,
              full_band: bool = True) -> MatchResult:
        """Match an audio file (path), a link (http/https) or the bytes of a file.

        A song (``content.looks_like_song``: drums or many notes, not a long single note)
        is split with Demucs first, unless ``separation`` says otherwise, and a few clean
        notes are picked from it. Without Demucs installed, a song that was not explicitly
        asked to be separated is searched as it is, with a :class:`PatchPilotWarning`.
        ``full_band``: keep a 44.1 kHz copy of a single sound (where it has sound above 11 kHz):
        the best answers are confirmed, labelled and refined at that rate
        (``Matcher.heard_rate``); without it, at the analysis rate.
        """
        options = separation or SeparationOptions()
        label = name or (str(source) if not isinstance(source, bytes) else None)
        with ExitStack() as stack:
            if is_url(source):
                source = stack.enter_context(fetched_audio(str(source)))
            audio, full_copy = load_clip(source, name=label, full_band=full_band)
            song = looks_like_song(audio)
            separate = options.wanted_for(song)
            if separate:
                try:
                    separator = self.separator(options.model, options.repo)
                    audio = separator.stem_audio(source, options.stem, name=audio.name, progress=progress)
                except DemucsNotInstalledError:
                    if options.separate:  # asked for: say what is missing
                        raise
                    warnings.warn(f"{audio.name} sounds like a song, but Demucs is not installed "
                                  "(pip install 'patchpilot[separate]'): matching clean notes of the whole mix",
                                  PatchPilotWarning, stacklevel=2)
                    separate = False
        analysis = select_track_notes(audio) if separate or song else None
        return self.matcher.match_audio(audio, top_k=top_k, synth=synth, candidates=candidates, analysis=analysis,
                                        full_band=None if separate or song else full_copy)

    def separator(self, model: str = DEFAULT_DEMUCS_MODEL, repo: Path | None = None) -> StemSeparator:
        """The Demucs separator for ``model`` (loaded once, on first use)."""
        key = (model, repo)
        if key not in self._separators:
            self._separators[key] = StemSeparator(model, repo)
        return self._separators[key]

    def refine(self, result: MatchResult, options: RefineOptions | None = None,
               progress: RefineProgress | None = None, cancel: threading.Event | None = None) -> MatchResult:
        """Refine a match result with CMA-ES: the refined preset comes first. Setting
        ``cancel`` stops it within a few renders (``refine.RefineCancelled``)."""
        return refine_result(self.matcher, result, options or RefineOptions(), progress, cancel)

    def match_text(self, text: str, *, top_k: int = DEFAULT_TOP_K, synth: str | None = None) -> TextMatchResult:
        """Presets a text describes ("dark evolving pad"): by CLAP on an index built with it,
        else by the sound descriptors of the built-in path (no model, no download)."""
        return self.text_matcher.match_text(text, top_k=top_k, synth=synth)

    def export(self, result: MatchResult, directory: Path) -> dict[int, ExportedFiles]:
        """Preset files and WAVs for every match, named after the input and the rank."""
        prepare_directory(directory)
        return {
            m.rank: export_preset(m.preset, directory, self._file_stem(result, m),
                                  note=m.render.note, velocity=m.render.velocity,
                                  note_seconds=m.render.note_seconds,
                                  total_seconds=m.render.total_seconds + EXPORT_TAIL_SECONDS, fx=m.fx)
            for m in result.matches
        }

    @staticmethod
    def deliverables(match: Match) -> Deliverables:
        """The files of an answer as the page offers them (preset, effect chain, the preset
        with the chain inside, each VST3 effect's preset), named as ``export`` names them."""
        return Deliverables(match.preset, match.preset.name, match.fx)

    @staticmethod
    def _file_stem(result: MatchResult, match: Match | None = None) -> str:
        """Base name of a match's files: the input's name and the rank."""
        # an input's name may be a link: keep file-name characters only
        stem = re.sub(r"[^\w.-]+", "-", result.stem).strip("-") or "input"
        return f"{stem}-{match.rank:02d}-{match.preset.name}" if match is not None else stem

    def match_audio(self, match: Match, *, note: int | None = None, sample_rate: int = EXPORT_SAMPLE_RATE_HZ,
                    tail: float = EXPORT_TAIL_SECONDS) -> np.ndarray:
        """A match as its exported files play (preset file in a fresh synth, then its
        effect chain): at the note it was compared at, or at ``note``."""
        total = match.render.total_seconds + tail
        audio = play_exported(match.preset, note=match.render.note if note is None else note,
                              velocity=match.render.velocity, note_seconds=match.render.note_seconds,
                              total_seconds=total, fx=match.fx)
        return from_native_rate(audio, sample_rate, total)

    def picture(self, result: MatchResult, match: Match) -> Picture:
        """What the picture of a match shows: the compared note of the input (none for a
        text query) and the match over the same stretch, as exported."""
        from patchpilot.plots import Picture, match_title

        audio = self.match_audio(match, sample_rate=ANALYSIS_SAMPLE_RATE_HZ, tail=0.0)
        reference = None
        if result.analysis is not None:
            note = result.analysis.best
            reference = resample(note.samples, note.sample_rate, ANALYSIS_SAMPLE_RATE_HZ)
        # a song's key is its melody: never shown
        played = "" if result.from_track else f"{note_name(match.render.note)}, velocity {match.render.velocity}"
        title = match_title(rank=match.rank, name=match.preset.name, synth=match.preset.synth,
                            distance=match.distance, labelled=result.analysis is not None, refined=match.refined,
                            played=played)
        return Picture(title, audio, reference)

    def plot(self, result: MatchResult, directory: Path, *,
             refine_history: Sequence[ConvergencePoint] | None = None) -> PlotFiles:
        """One PNG per match (``<input>-<rank>-<preset>.png``, beside the exported files when
        ``directory`` is the export folder) and, given the refinement's progress reports,
        its convergence (``<input>-refine.png``). Needs ``patchpilot[plot]``."""
        from patchpilot.plots import check_available, draw_convergence, draw_match

        check_available()  # before any rendering
        prepare_directory(directory)
        written: dict[int, Path] = {}
        for match in result.matches:
            path = directory / f"{slug(self._file_stem(result, match))}.png"
            draw_match(self.picture(result, match), path)
            written[match.rank] = path
        convergence = None
        title = _convergence_title(result)
        if refine_history is not None and title is not None:
            convergence = directory / f"{slug(self._file_stem(result))}-refine.png"
            draw_convergence(refine_history, convergence, distance_before=None, title=title)
        return PlotFiles(written, convergence)

    @staticmethod
    def check_plotting() -> None:
        """Raise the one-line error of ``plot`` now when pictures cannot be drawn here."""
        from patchpilot.plots import check_available

        check_available()

    def picture_png(self, result: MatchResult, match: Match) -> bytes:
        """The picture of a match (``picture``) as PNG bytes. Needs ``patchpilot[plot]``."""
        from patchpilot.plots import draw_match, png_bytes

        return png_bytes(draw_match, self.picture(result, match))

    @staticmethod
    def convergence_png(result: MatchResult, history: Sequence[ConvergencePoint]) -> bytes | None:
        """A refinement's progress reports as a PNG (None when ``result`` holds no refinement)."""
        from patchpilot.plots import draw_convergence, png_bytes

        title = _convergence_title(result)
        return None if title is None else png_bytes(draw_convergence, history, title=title)

    @staticmethod
    def card(result: MatchResult, match: Match) -> dict:
        """A match as data for a card: its settings grouped as on the synth's panel, its
        label, its effect chain in words (``report.match_card``)."""
        return match_card(result, match)

    @staticmethod
    def read_audio(path: Path, *, name: str | None = None) -> Audio:
        """An audio file decoded at the analysis rate (one clear error for what is not audio)."""
        return load_audio(path, ANALYSIS_SAMPLE_RATE_HZ, name=name)

    def index_info(self) -> dict:
        """The index in use: its folder, preset count per synth and embedder."""
        manifest = self.index.manifest
        return {"path": str(self.index_path), "presets": len(self.index), "synths": dict(manifest.synths),
                "embedder": manifest.embedder}

    # ---- presets ----------------------------------------------------------------------
    def preset(self, reference: str | Path) -> Preset:
        """A preset from a file (``.vital``, ``.syx``, a plugin's ``.vstpreset``) or an index id
        (``vital:glass-pluck``)."""
        return self._reference(reference)[0]

    def _reference(self, reference: str | Path) -> tuple[Preset, str | None]:
        """The preset a reference names, and its index id (None for a file)."""
        path = Path(reference)
        if path.suffix.lower() in preset_file_suffixes() or path.exists():
            if not path.exists():
                raise PresetError(f"{reference}: no such preset file")
            presets = self._read_preset_file(path)
            if not presets:
                raise PresetError(f"{reference}: holds no preset")
            return presets[0], None
        stored = self.index.store.get_by_id(str(reference))
        if stored is None:
            raise PresetError(f"no preset {str(reference)!r} in the index at {self.index_path} "
                              f"(see `patchpilot presets list`)")
        return stored.preset, stored.preset_id

    def _read_preset_file(self, path: Path) -> list[Preset]:
        """A built-in synth's preset file, or a plugin's file read by the plugin the index holds."""
        synth = synth_for_file(path.suffix)
        if synth is not None:
            return get_engine(synth).read_presets(path)
        plugins = [name for name in self.index.manifest.synths if is_plugin_synth(name)]
        if path.suffix.lower() in PLUGIN_PRESET_SUFFIXES and plugins:
            if len(plugins) > 1:
                raise PresetError(f"{path}: the index holds several plugins ({', '.join(plugins)}); "
                                  "import the file with build-index --presets to say which")
            return get_engine(plugins[0]).read_presets(path)
        expected = " or ".join(s for e in BUILTIN.values() for s in e.bank_suffixes)
        raise PresetError(f"{path}: not a preset file (expected {expected}, or a plugin's .vstpreset with an "
                          "index that holds the plugin)")

    def tweak(self, reference: str | Path | Preset, words: str, *, amount: float = 1.0, note: int = 60,
              velocity: int = DEFAULT_VELOCITY, fx: FxChain = FxChain()) -> TweakResult:
        """A preset (an index id, a preset file, or a preset such as a match's) moved the way
        ``words`` ask ("brighter, shorter attack, less reverb"), ``amount`` times the usual
        step, and otherwise kept; measured at ``note`` and ``velocity`` through ``fx``."""
        preset = reference if isinstance(reference, Preset) else self._reference(reference)[0]
        if not 0.0 < amount <= 5.0:
            raise UsageError(f"--amount {amount:g}: expected more than 0 and at most 5")
        return Tweaker(self.matcher.pool, PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)).tweak(
            preset, words, amount=amount, note=note, velocity=velocity, fx=fx)

    def tweak_match(self, result: MatchResult, match: Match, words: str, *, amount: float = 1.0) -> TweakedResult:
        """A match's preset tweaked, heard as the match is (its key and velocity, a song's match
        at C4; through its effect chain), as a result with one answer: the tweaked preset with
        the same chain."""
        note = 60 if result.from_track else match.render.note
        tweak = self.tweak(match.preset, words, amount=amount, note=note, velocity=match.render.velocity, fx=match.fx)
        return as_result(tweak, match.preset_id, match.fx)

    @staticmethod
    def check_tweak_words(words: str) -> None:
        """Raise the one-line error of ``tweak`` now when ``words`` ask for nothing it can move."""
        if not word_moves(words)[0]:
            raise UsageError(f"--tweak {words!r}: nothing there says how to move a sound (try: brighter, darker, "
                             "shorter attack, longer release, more movement, wider, grittier, less reverb)")

    @staticmethod
    def tweak_document(tweak: TweakResult) -> dict:
        """A tweak as data (``report.tweak_to_dict``): each word's move, what else moved."""
        return tweak_to_dict(tweak)

    def export_tweak(self, result: TweakResult, directory: Path) -> ExportedFiles:
        """The tweaked preset's file and its WAV (played at the note it was measured at)."""
        prepare_directory(directory)
        return export_preset(result.preset, directory, slug(result.preset.name), note=result.note,
                             velocity=result.velocity)

    def similar(self, reference: str | Path | Preset, *, note: int = 60, velocity: int = DEFAULT_VELOCITY,
                seconds: float = SIMILAR_NOTE_SECONDS, top_k: int = DEFAULT_TOP_K, synth: str | None = None,
                candidates: int = DEFAULT_RERANK_CANDIDATES) -> SimilarResult:
        """Presets of the index (the library's and the user's own) that sound like a preset (an
        index id, a preset file, or a preset such as a match's) played at ``note`` and
        ``velocity``, held ``seconds``: ranked by the distance ``match`` uses, the preset itself
        left out."""
        preset, preset_id = (reference, None) if isinstance(reference, Preset) else self._reference(reference)
        total = seconds + SIMILAR_TOTAL_SECONDS - SIMILAR_NOTE_SECONDS
        return similar_presets(self.matcher, preset, reference_id=preset_id, note=note, velocity=velocity,
                               note_seconds=seconds, total_seconds=total, top_k=top_k, synth=synth,
                               candidates=candidates)

    def render(self, preset: Preset, *, note: int, velocity: int, seconds: float, tail: float,
               sample_rate: int, fx: FxChain = FxChain()) -> np.ndarray:
        """One note of a preset as its exported files play (preset file in a fresh synth,
        then ``fx`` at the export rate), at ``sample_rate``."""
        audio = play_exported(preset, note=note, velocity=velocity, note_seconds=seconds, total_seconds=seconds + tail,
                              fx=fx)
        return from_native_rate(audio, sample_rate, seconds + tail)

    def list_presets(self, synth: str | None = None, category: str | None = None, *, user: bool = False) -> list[dict]:
        """Presets of the index; ``user``: only those from the user's files, with their source."""
        return self.index.store.listing(synth, category, user=user)

    # ---- index management ---------------------------------------------------------------
    def build_index(self, request: BuildRequest, progress: ProgressCallback | None = None) -> tuple[BuildReport, bool]:
        """Build an index, or add presets to one (``index/manage.py``). The request's index
        defaults to this object's explicit index, else the user's own. Returns the report and
        whether presets were added to an existing index. Later queries see the new version."""
        if request.index is None and self.explicit_index is not None:
            request = replace(request, index=self.explicit_index)
        result = build_index(request, progress)
        self.close()  # the next query opens the published version
        self.index_path = self.explicit_index if self.explicit_index is not None else default_index_dir()
        return result

    def build_corpus(self, request: CorpusRequest, progress: ProgressCallback | None = None) -> CorpusReport:
        """Make, resume or grow a training corpus (``corpus/``); the index is not touched."""
        from patchpilot.corpus import build_corpus

        return build_corpus(request, progress)

    def describe_index(self, progress: ProgressCallback | None = None) -> int:
        """Add the sound descriptors text queries need to this object's index; returns how
        many presets were described."""
        described = describe_index(self.index_path, workers=self.workers, progress=progress)
        self.close()
        return described


def _convergence_title(result: MatchResult) -> str | None:
    """The title of a refinement's convergence picture (None when no match was refined from)."""
    refined = next((m for m in result.matches if m.refinement is not None), None)
    if refined is None:
        return None
    outcome = refined.refinement
    return (f"Refinement of {outcome.start_preset_id}: distance {outcome.distance_before:.3f} -> "
            f"{outcome.distance_after:.3f}, {outcome.evaluations} evaluations")
