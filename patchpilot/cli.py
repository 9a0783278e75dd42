"""The ``patchpilot`` command line: parses, prints and exits; the library does the work.

stdout carries only results (tables, or JSON with ``--json``); progress, notes and errors
go to stderr. Errors are one line and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from patchpilot import __version__
from patchpilot.constants import (
    DEFAULT_DEMUCS_MODEL,
    DEFAULT_INDEX_SIZE_PER_SYNTH,
    DEFAULT_REFINE_BUDGET,
    DEFAULT_RERANK_CANDIDATES,
    DEFAULT_STEM,
    DEFAULT_TOP_K,
    DEFAULT_VELOCITY,
    EXPORT_SAMPLE_RATE_HZ,
    SERVE_HOST,
    SERVE_PORT,
)
from patchpilot.errors import PatchPilotError, PatchPilotWarning, UsageError


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that ``finally``
    blocks and context managers (temporary folders, render pools) clean up."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def _interrupt_exit(interrupt: KeyboardInterrupt) -> typer.Exit:
    """One ``interrupted`` line; exit code 128 + the signal number, as a shell reports it."""
    stderr.print("interrupted", highlight=False)
    return typer.Exit(128 + (signal.SIGTERM if isinstance(interrupt, _Terminated) else signal.SIGINT))


class _CommandGroup(TyperGroup):
    """Runs every command with SIGTERM treated as Ctrl-C (a handler installed for the
    command's run, not at import, and put back after it)."""

    def invoke(self, ctx: Any) -> Any:
        main_thread = threading.current_thread() is threading.main_thread()  # signal() works only there
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as interrupt:  # outside _errors_to_exit (imports, printing)
            raise _interrupt_exit(interrupt) from None
        finally:
            if previous is not None:  # None: no handler to put back (or one set outside Python)
                signal.signal(signal.SIGTERM, previous)


app = typer.Typer(
    name="patchpilot",
    help="Reverse sound design: find the synth preset and parameters that make a sound.\n\n"
         "Give it a sound; it answers with presets, their settings and preset files.\n\n"
         "Examples:\n  patchpilot match sound.wav\n  patchpilot serve",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_CommandGroup,
    # Docstrings keep their line breaks (rich mode joins no lines); each line is a phrase
    # short enough for an 80-column terminal, so rich does not re-wrap it mid-sentence.
    rich_markup_mode="rich",
)
presets_app = typer.Typer(help="Browse the presets of an index.\n\nOne command for now: list.\n\n"
                               "Example:\n  patchpilot presets list --synth dexed",
                          no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(presets_app, name="presets")

# Piped output gets a fixed width instead of rich's 80-column guess.
stdout = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 132)
stderr = Console(stderr=True)

T = TypeVar("T")

#: What progress stages are called on screen.
STAGE_LABELS = {"render": "rendering presets", "corpus": "rendering patches", "describe": "describing presets", "sketch": "sketching presets", "train": "training queries",
                "index": "writing index", "separate": "separating stems"}

# ---- shared option declarations -----------------------------------------------------------
IndexOption = Annotated[
    Optional[Path],
    typer.Option("--index", help="Index folder (default: $PATCHPILOT_INDEX, your own built index, or the shipped one)."),
]
SynthOption = Annotated[
    Optional[str], typer.Option("--synth", help="Only this synth: vital, dexed or vst3:NAME (a plugin you indexed).",
                                case_sensitive=False)
]
WorkersOption = Annotated[int, typer.Option("--workers", min=1, max=64, help="Render threads.")]
FxPluginOption = Annotated[Optional[list[str]], typer.Option(
    "--fx-plugin", metavar="NAME|PATH",
    help="A VST3 effect of yours the effect chain may use too (its own settings, searched like the built-in "
         "effects; repeat for more). A name is looked up in the standard VST3 folders.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
NoteOption = Annotated[int, typer.Option("--note", min=0, max=127, help="MIDI note the preset plays (60 is C4).")]
VelocityOption = Annotated[int, typer.Option("--velocity", min=1, max=127, help="MIDI velocity.")]
HoldOption = Annotated[float, typer.Option("--seconds", min=0.01, max=60.0, help="How long the note is held.")]
ExportOption = Annotated[Optional[Path], typer.Option("--export", help="Write each match's preset file and a WAV here.")]
PlotOption = Annotated[Optional[Path], typer.Option(
    "--plot", metavar="DIR", help="Write a picture (PNG) of each match against the input here, and the "
                                  "refinement's progress; the --export folder keeps them with the files "
                                  "(needs patchpilot\\[plot]).")]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", min=1, max=100, help="Matches to print.")]
DetailOption = Annotated[int, typer.Option("--detail", min=0, help="Matches whose settings the table lists.")]
CandidatesOption = Annotated[int, typer.Option("--candidates", min=1, max=200,
                                               help="Presets re-rendered and re-ranked per input.")]
EmbedderOption = Annotated[Optional[str], typer.Option(
    "--embedder", help="timbre (built-in) or clap (needs patchpilot\\[clap]); must be the one the index was built with.")]
ClapCheckpointOption = Annotated[Optional[Path], typer.Option(
    "--clap-checkpoint", help="Local CLAP checkpoint (.pt) instead of laion-clap's download "
                              "(also $PATCHPILOT_CLAP_CHECKPOINT).")]


def _fail(error: PatchPilotError) -> typer.Exit:
    # escaped: messages quote paths and `pip install "patchpilot[clap]"`, not rich markup
    stderr.print(f"[bold red]error:[/bold red] {escape(str(error))}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(error.exit_code)


@contextmanager
def _errors_to_exit() -> Iterator[None]:
    """Library errors become one stderr line and their exit code; Ctrl-C exits 130, SIGTERM 143."""
    try:
        yield
    except PatchPilotError as error:
        raise _fail(error) from None
    except KeyboardInterrupt as interrupt:
        raise _interrupt_exit(interrupt) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as error:  # a bug: still one line, with the details on request
        if os.environ.get("PATCHPILOT_DEBUG"):
            raise
        stderr.print(f"[bold red]internal error:[/bold red] {type(error).__name__}: {error} "
                     "(set PATCHPILOT_DEBUG=1 for the traceback, and please report it)", highlight=False, soft_wrap=True)
        raise typer.Exit(70) from None


def _print_warning(text: str) -> None:
    """One ``warning:`` line on stderr."""
    stderr.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The library's :class:`PatchPilotWarning` s become one ``warning:`` line each on
    stderr (after any spinner inside has stopped); other warnings are shown as usual."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PatchPilotWarning)
            yield
    finally:  # also before the error line when the work fails afterwards
        for w in caught:
            if issubclass(w.category, PatchPilotWarning):
                _print_warning(" ".join(str(w.message).split()))
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _check_synth(synth: str | None) -> str | None:
    if synth is None:
        return None
    from patchpilot.synths.registry import PLUGIN_PREFIX, builtin_name, describe_builtin

    name = synth.strip().lower()
    if name.startswith(PLUGIN_PREFIX) and name[len(PLUGIN_PREFIX):]:
        from patchpilot.synths.vst3 import plugin_synth_name

        return plugin_synth_name(synth.strip()[len(PLUGIN_PREFIX):])
    found = builtin_name(name)
    if found is None:
        raise UsageError(f"--synth {synth}: expected {describe_builtin()} (or {PLUGIN_PREFIX}NAME, a plugin you indexed)")
    return found


def _version(value: bool) -> None:
    if value:
        stdout.print(f"patchpilot {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """Reverse sound design: find the synth preset and parameters that make a sound.

    Example:
      patchpilot match sound.wav
    """
    # Here rather than at import (importing a module must not change the environment), and
    # before any command imports numpy, faiss or torch: one OpenMP thread (on a small machine
    # with a busy neighbour, two-thread OpenMP collapses and single FAISS queries run slower;
    # index.vectors.import_faiss sets faiss' own count too) and no Hugging Face hub downloads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ---- match --------------------------------------------------------------------------------
@app.command()
def match(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Audio files (wav, flac, mp3, ogg, aiff), links (http/https, via yt-dlp), or - for stdin.",
        metavar="INPUT...")] = None,
    text: Annotated[Optional[str], typer.Option(
        "--text", help='Describe the sound instead: --text "dark evolving pad" (no INPUT then).')] = None,
    top_k: TopKOption = DEFAULT_TOP_K,
    synth: SynthOption = None,
    index: IndexOption = None,
    json_output: JsonOption = False,
    export: ExportOption = None,
    plot: PlotOption = None,
    candidates: CandidatesOption = DEFAULT_RERANK_CANDIDATES,
    detail: DetailOption = 1,
    workers: WorkersOption = 2,
    proposals: Annotated[bool, typer.Option(
        "--proposals/--no-proposals",
        help="Add the neural network's proposed presets to the candidates (off by default: on the "
             "benchmarks they have not sounded closer than the library's presets).")] = False,
    fx: Annotated[bool, typer.Option(
        "--fx/--no-fx", help="Search an effect chain (reverb, delay, chorus, compressor, drive, EQ) for the best "
                             "matches; an effect that does not bring a match closer stays off.")] = True,
    fx_plugins: FxPluginOption = None,
    refine: Annotated[bool, typer.Option("--refine", help="Optimise the best matches' parameters against the "
                                         "input (CMA-ES); the refined preset is listed first.")] = False,
    budget: Annotated[int, typer.Option("--budget", min=1, max=100_000,
                                        help="Refinement: parameter sets to try.")] = DEFAULT_REFINE_BUDGET,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", min=0.1, metavar="SECONDS",
                                                        help="Refinement: stop after this long.")] = None,
    tweak_words: Annotated[Optional[str], typer.Option(
        "--tweak", metavar="WORDS", help='Then move the best match the way WORDS ask ("darker, more movement"), '
                                         "as `patchpilot tweak` does.")] = None,
    embedder: EmbedderOption = None,
    clap_checkpoint: ClapCheckpointOption = None,
    separate: Annotated[Optional[bool], typer.Option(
        "--separate/--no-separate", show_default="separate songs: over 10 s with drums or many notes",
        help="Split the input with Demucs and match one stem.")] = None,
    stem: Annotated[str, typer.Option("--stem", help="Stem to match: other (synths, keys), bass, vocals or drums.",
                                      case_sensitive=False)] = DEFAULT_STEM,
    demucs_model: Annotated[str, typer.Option("--demucs-model", help="Demucs model name.")] = DEFAULT_DEMUCS_MODEL,
    demucs_repo: Annotated[Optional[Path], typer.Option(
        "--demucs-repo", help="Folder with Demucs model files, for offline use (default: $PATCHPILOT_DEMUCS_REPO).")] = None,
) -> None:
    """Find the presets closest to INPUT (or to --text) and how to build them.

    The table ranks the matches by distance: how far the exported preset sounds
    from the input (0 is the same sound; lower is closer). Its label reads it:
    close (like the same preset at another note), similar (the right family),
    rough (a starting point only).

    Songs and links: Demucs separates the synth layer (the other stem),
    and a few clean notes of it are matched.
    Only how to build the sound is printed, never the notes.

    Examples:
      patchpilot match sound.wav --export out/
      patchpilot match sound.wav --refine --plot pictures/
      patchpilot match sound.wav --fx-plugin ZamComp --export out/
      patchpilot match --text "dark evolving pad"
    """
    from patchpilot.api import PatchPilot, RefineOptions, SeparationOptions
    from patchpilot.audio.io import read_capped
    from patchpilot.report import print_result, print_tweak, result_to_dict, rough_warning, tweak_to_dict

    if text is not None:
        with _errors_to_exit():
            if inputs:
                raise UsageError("give either audio INPUT or --text, not both")
            if refine:
                raise UsageError("--refine optimises against audio; it does not apply to --text")
            if tweak_words:
                raise UsageError("--tweak moves an audio match; tweak a text match's preset with patchpilot tweak")
        _match_text(text, top_k=top_k, synth=synth, index=index, json_output=json_output, export=export,
                    plot=plot, detail=detail, embedder=embedder, clap_checkpoint=clap_checkpoint)
        return
    documents: list[dict] = []
    exit_code = 0
    with _errors_to_exit():
        chosen = _check_synth(synth)
        if not inputs:
            raise UsageError("give an audio INPUT (or - for stdin), or --text \"a description\"")
        if inputs.count("-") > 1:
            raise UsageError("stdin (-) can be given once")
        separation = SeparationOptions(separate, stem.lower(), demucs_model, demucs_repo)
        if tweak_words:
            PatchPilot.check_tweak_words(tweak_words)  # one line now, not after the matching
        if plot is not None:
            PatchPilot.check_plotting()  # one line now, not after the matching
        with _warnings_to_stderr():  # a VST3 effect whose settings are not all searched says so
            pilot = PatchPilot(index, workers=workers, embedder=embedder, clap_checkpoint=clap_checkpoint,
                               proposals=proposals, fx=fx, fx_plugins=fx_plugins or ())
        try:
            for item in inputs:
                try:
                    source: str | bytes = read_capped(sys.stdin.buffer) if item == "-" else item
                    with _warnings_to_stderr(), _status(f"matching {item}") as progress:
                        result = pilot.match(source, top_k=top_k, synth=chosen, candidates=candidates,
                                             name="<stdin>" if item == "-" else item, separation=separation,
                                             progress=progress)
                    history: list[tuple[int, int, float]] | None = None  # the refinement's progress reports
                    if refine:
                        history = []
                        with _refine_progress(item, budget) as refine_progress:
                            def record(done: int, total: int, best: float, bar: Callable = refine_progress) -> None:
                                history.append((done, total, float(best)))
                                bar(done, total, best)

                            result = pilot.refine(result, RefineOptions(budget, time_limit), record)
                    tweaked = tweaked_files = None
                    if tweak_words and result.matches:
                        try:
                            with _status(f"tweaking the best match of {item}"):
                                tweaked = pilot.tweak_match(result, result.matches[0], tweak_words)
                        except PatchPilotError as error:  # the match still stands
                            _print_warning(f"{item}: --tweak: {error}")
                    with _status(f"exporting {item}") if export is not None else nullcontext():
                        exports = pilot.export(result, export) if export is not None else {}
                        if tweaked is not None and export is not None:
                            tweaked_files = pilot.export(tweaked, export)[1]
                    with _status(f"drawing {item}") if plot is not None else nullcontext():
                        plots = (pilot.plot(result, plot, refine_history=history)
                                 if plot is not None else None)
                except PatchPilotError as error:
                    if len(inputs) == 1:
                        raise
                    stderr.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False, soft_wrap=True)
                    exit_code = exit_code or error.exit_code
                    continue
                warning = rough_warning(result)
                if warning:
                    _print_warning(f"{item}: {warning}")
                if json_output:
                    documents.append(result_to_dict(result, exports, plots))
                    if tweaked is not None and tweaked.tweak is not None:
                        documents[-1]["tweak"] = tweak_to_dict(tweaked.tweak, tweaked_files)
                else:
                    print_result(stdout, result, exports, detail=detail, plots=plots)
                    if tweaked is not None and tweaked.tweak is not None:
                        stdout.print()
                        print_tweak(stdout, tweaked.tweak, tweaked_files)
        finally:
            pilot.close()
    if json_output and documents:
        payload = documents[0] if len(inputs) == 1 else documents
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    if exit_code:
        raise typer.Exit(exit_code)


def _match_text(text: str, *, top_k: int, synth: str | None, index: Path | None, json_output: bool,
                export: Path | None, plot: Path | None, detail: int, embedder: str | None, clap_checkpoint: Path | None) -> None:
    """``match --text``: the same table, JSON and export as an audio match; the words
    understood and ignored go to stderr."""
    from patchpilot.api import PatchPilot
    from patchpilot.report import print_result, result_to_dict

    with _errors_to_exit():
        with PatchPilot(index, embedder=embedder, clap_checkpoint=clap_checkpoint) as pilot:
            with _status("searching"):
                result = pilot.match_text(text, top_k=top_k, synth=_check_synth(synth))
            if result.query is not None:
                stderr.print(f"understood: {', '.join(result.query.understood)}"
                             + (f"; ignored: {', '.join(result.query.ignored)}" if result.query.ignored else ""),
                             highlight=False, soft_wrap=True)
            exports = pilot.export(result, export) if export is not None else {}
            plots = pilot.plot(result, plot) if plot is not None else None
    if json_output:
        sys.stdout.write(json.dumps(result_to_dict(result, exports, plots), indent=2) + "\n")
    else:
        print_result(stdout, result, exports, detail=detail, plots=plots)


@contextmanager
def _refine_progress(item: str, budget: int) -> Iterator[Callable[[int, int, float], None]]:
    """A bar with the best distance so far on stderr when it is a terminal."""
    if not stderr.is_terminal:
        yield lambda done, total, best: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("refining {task.fields[item]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("best distance {task.fields[best]}"), TimeElapsedColumn(), console=stderr) as bar:
        task = bar.add_task("refine", total=budget, item=item, best="-")
        yield lambda done, total, best: bar.update(task, completed=done, total=total, best=f"{best:.3f}")


@contextmanager
def _status(message: str) -> Iterator[Callable[[str, int, int], None]]:
    """A spinner on stderr when it is a terminal; the progress callback it yields turns it
    into a bar while a long stage (separating a song) runs."""
    if not stderr.is_terminal:
        yield lambda stage, done, total: None
        return
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    with stderr.status(message) as spinner:

        def update(stage: str, done: int, total: int) -> None:
            if done >= total:  # the stage is over: back to the plain spinner
                spinner.update(message)
                return
            line = Table.grid(padding=(0, 1))
            line.add_row(f"{message}: {STAGE_LABELS.get(stage, stage)}", ProgressBar(total=total, completed=done, width=30),
                         f"{done}/{total}")
            spinner.update(line)

        yield update


# ---- build-index --------------------------------------------------------------------------
@app.command("build-index")
def build_index(
    index: IndexOption = None,
    synths: Annotated[Optional[list[str]], typer.Option("--synth", help="Synths to index (repeatable).")] = None,
    presets: Annotated[Optional[list[Path]], typer.Option(
        "--presets", help="Your own presets: .vital files, DX7 .syx banks, .vstpreset files or folders of them (repeatable).")] = None,
    plugins: Annotated[Optional[list[str]], typer.Option(
        "--plugin", help="A VST3 instrument to index, by path or by name in the VST3 folders (repeatable).")] = None,
    size: Annotated[int, typer.Option("--size", min=1, help="Designed + variant presets per synth.")] = DEFAULT_INDEX_SIZE_PER_SYNTH,
    factory: Annotated[bool, typer.Option("--factory/--no-factory", help="Include the factory banks and their variants.")] = True,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="With --presets: rebuild everything instead of adding to the index.")] = False,
    drop_user_presets: Annotated[bool, typer.Option(
        "--drop-user-presets", help="Leave out the presets you added before (a rebuild keeps them).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the preset variants.")] = 0,
    workers: WorkersOption = 2,
    embedder: EmbedderOption = None,
    clap_checkpoint: ClapCheckpointOption = None,
    describe: Annotated[bool, typer.Option(
        "--describe", help="Only add what an index built by an older version lacks: the sound "
                     "descriptors text queries need and the sketches retrieval scores.")] = False,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="auto|ADDRESS",
        help="Render on a Ray cluster: auto (the cluster this machine belongs to, or $RAY_ADDRESS) or its "
             "address. Needs patchpilot[cluster] on every node.")] = None,
) -> None:
    """Render presets into an index of timbre vectors and their full parameters.

    With --presets and an existing index, the presets are added to it.
    A rebuild keeps the presets you added before (see presets list --user),
    unless --drop-user-presets.
    An interrupted build resumes when the same command runs again;
    the old index stays usable until the new one is published.

    Examples:
      patchpilot build-index --presets my_banks/
      patchpilot build-index --index DIR --describe
      patchpilot build-index --index DIR --ray auto
    """
    from patchpilot.api import PatchPilot
    from patchpilot.embed import DEFAULT_EMBEDDER
    from patchpilot.index.manage import BuildRequest
    from patchpilot.synths.registry import builtin_synths

    if describe:
        with _errors_to_exit(), _warnings_to_stderr(), _progress() as progress, PatchPilot(index, workers=workers) as pilot:
            count = pilot.describe_index(progress)
            target = pilot.index_path
        stderr.print(f"described {count} presets in {target}" if count else f"{target} already has descriptors and sketches")
        return
    with _errors_to_exit():
        chosen = tuple(_check_synth(s) for s in synths) if synths else (() if plugins else builtin_synths())
        request = BuildRequest(index=index, synths=chosen, presets=tuple(presets or ()), plugins=tuple(plugins or ()),
                               factory=factory,
                               size_per_synth=size, seed=seed, embedder=embedder or DEFAULT_EMBEDDER,
                               clap_checkpoint=clap_checkpoint, rebuild=rebuild, drop_user_presets=drop_user_presets,
                               workers=workers, ray=ray)
        with _warnings_to_stderr(), _progress() as progress, PatchPilot(index, workers=workers) as pilot:
            report, appended = pilot.build_index(request, progress)
    for path, why in report.unreadable:
        _print_warning(f"skipped {path}: {why}")
    for preset_id, why in report.failed:
        _print_warning(f"skipped {preset_id}: the synth could not play it ({why})")
    counts = ", ".join(f"{n} {s}" for s, n in report.presets.items())
    what = f"added {report.appended} presets to" if appended else "built"
    notes = []
    if report.skipped:
        notes.append(f"{len(report.skipped)} skipped: silent or duplicate")
    if report.unreadable or report.failed:
        notes.append(f"{len(report.unreadable)} unreadable files and {len(report.failed)} unplayable presets skipped")
    if report.kept_user:
        notes.append(f"kept your {report.kept_user} presets")
    if report.cluster:
        notes.append(f"rendered on a Ray cluster: {report.cluster}")
    stderr.print(f"{what} {report.path}: {counts} presets" + (f" ({'; '.join(notes)})" if notes else ""),
                 highlight=False, soft_wrap=True)


# ---- corpus -------------------------------------------------------------------------------
@app.command()
def corpus(
    output: Annotated[Path, typer.Argument(help="Folder of the corpus (new, or one to resume or grow).")],
    size: Annotated[int, typer.Option("--size", min=1, help="Patches per synth.")] = 1000,
    synths: Annotated[Optional[list[str]], typer.Option("--synth", help="vital or dexed (repeatable; default every built-in synth).")] = None,
    notes: Annotated[str, typer.Option("--notes", help="MIDI notes each patch is played at, comma-separated.")] = "48,60,72",
    velocities: Annotated[str, typer.Option("--velocities", help="Velocities each note is played at, comma-separated.")] = "64,100,127",
    audio: Annotated[bool, typer.Option("--audio", help="Keep the renders too (float16, 22.05 kHz).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the patches.")] = 0,
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="Patches per shard file.")] = 256,
    workers: WorkersOption = 2,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="auto|ADDRESS",
        help="Render on a Ray cluster: auto (the cluster this machine belongs to, or $RAY_ADDRESS) or its "
             "address. Needs patchpilot[cluster] on every node.")] = None,
) -> None:
    """Render random and perturbed patches into a training corpus.

    Half the patches perturb a factory preset, half draw every audible
    continuous parameter of one uniformly (the space refinement searches).
    Each is played at every note and velocity; parameters, levels and
    features (and with --audio the renders) go to sharded .npz files with
    a corpus.json manifest (docs/CORPUS.md). The same command resumes an
    interrupted run; a larger --size grows a finished corpus.

    Examples:
      patchpilot corpus corpus/ --size 10000
      patchpilot corpus corpus/ --size 1000000 --ray auto
    """
    from patchpilot.api import PatchPilot
    from patchpilot.corpus import CorpusPlan, CorpusRequest
    from patchpilot.synths.registry import builtin_synths

    with _errors_to_exit():
        chosen = tuple(_check_synth(s) for s in synths) if synths else builtin_synths()
        plan = CorpusPlan(output, size, chosen, seed, _numbers(notes, "--notes"), _numbers(velocities, "--velocities"),
                          audio, shard_size)
        request = CorpusRequest(plan, workers, ray)
        with _warnings_to_stderr(), _progress() as progress, PatchPilot(workers=workers) as pilot:
            report = pilot.build_corpus(request, progress)
    counts = "; ".join(f"{synth} " + ", ".join(f"{n} {status}" for status, n in tally.items() if n)
                       for synth, tally in report.counts.items())
    where = f"; rendered on a Ray cluster: {report.cluster}" if report.cluster else ""
    stderr.print(f"corpus {report.path}: {counts} ({report.made} of {report.shards} shards made by this run{where})",
                 highlight=False, soft_wrap=True)


def _numbers(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option} takes whole numbers separated by commas, not {text!r}") from None
    if not values:
        raise UsageError(f"{option} needs at least one number")
    return values


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr when it is a terminal; silence otherwise."""
    if not stderr.is_terminal:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:  # noqa: ANN001
            return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                  console=stderr) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                name, _, where = stage.partition(" ")  # "render on a Ray cluster (2 nodes, 4 CPUs)"
                tasks[stage] = bar.add_task(STAGE_LABELS.get(name, name) + (f" {where}" if where else ""), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


# ---- render -------------------------------------------------------------------------------
@app.command()
def render(
    preset: Annotated[str, typer.Argument(help="A preset file (.vital, .syx) or an index preset id (see `presets list`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="WAV file to write.")],
    note: NoteOption = 60,
    velocity: VelocityOption = DEFAULT_VELOCITY,
    seconds: HoldOption = 1.5,
    tail: Annotated[float, typer.Option("--tail", min=0.0, max=30.0, help="Seconds rendered after the release.")] = 1.5,
    fx: Annotated[Optional[Path], typer.Option(
        "--fx", help="An effect chain to play the note through (the .fx.json that match --export writes).")] = None,
    index: IndexOption = None,
) -> None:
    """Play one note of a preset into a WAV file (44.1 kHz, 32-bit float).

    The preset plays as its file does in a freshly loaded synth,
    then through the effect chain of --fx when one is given.

    Examples:
      patchpilot render vital:crystal-pick --note 60 -o pick.wav
      patchpilot render out/sound-01.vital --fx out/sound-01.fx.json -o wet.wav
    """
    from patchpilot.api import PatchPilot
    from patchpilot.audio.io import write_wav
    from patchpilot.fx import FxChain, load_chain

    with _errors_to_exit(), _warnings_to_stderr():
        with PatchPilot(index) as pilot:
            chosen = pilot.preset(preset)
            audio = pilot.render(chosen, note=note, velocity=velocity, seconds=seconds, tail=tail,
                                 sample_rate=EXPORT_SAMPLE_RATE_HZ, fx=load_chain(fx) if fx else FxChain())
        try:
            write_wav(output, audio, EXPORT_SAMPLE_RATE_HZ)
        except (OSError, RuntimeError) as exc:
            raise UsageError(f"cannot write {output}: {exc}") from None
    stderr.print(f"wrote {output} ({chosen.synth}: {chosen.name})")


# ---- tweak --------------------------------------------------------------------------------
@app.command()
def tweak(
    preset: Annotated[str, typer.Argument(help="A preset file (.vital, .syx, a plugin's .vstpreset) or an index "
                                               "preset id (see `presets list`).")],
    words: Annotated[str, typer.Argument(help='How to move it: "brighter, shorter attack, less reverb".')],
    amount: Annotated[float, typer.Option("--amount", min=0.1, max=5.0,
                                          help="How far: 1 is about two noticeable steps per word.")] = 1.0,
    note: NoteOption = 60,
    velocity: VelocityOption = DEFAULT_VELOCITY,
    index: IndexOption = None,
    json_output: JsonOption = False,
    export: Annotated[Optional[Path], typer.Option("--export", help="Write the tweaked preset file and a WAV here.")] = None,
    workers: WorkersOption = 2,
) -> None:
    """Move a preset the way words ask, and keep the rest of it.

    Each word names something measured on the sound (brightness, attack,
    release, movement, noisiness, width, drive, reverb...): the synth's own
    settings are nudged, the note measured, and the preset moved along the
    settings that change that most and the rest least. The table says how far
    each word moved (in noticeable steps) and what else moved; the tweaked
    preset is a file the synth loads, which can be tweaked again.

    Examples:
      patchpilot tweak vital:crystal-pick "brighter, longer release" --export out/
      patchpilot tweak my_lead.vital "slightly less reverb" --json
    """
    from patchpilot.api import PatchPilot
    from patchpilot.report import print_tweak, tweak_to_dict

    with _errors_to_exit():
        with _warnings_to_stderr(), PatchPilot(index, workers=workers) as pilot:
            with _status(f"tweaking {preset}"):
                result = pilot.tweak(preset, words, amount=amount, note=note, velocity=velocity)
            exported = pilot.export_tweak(result, export) if export is not None else None
    if json_output:
        sys.stdout.write(json.dumps(tweak_to_dict(result, exported), indent=2, default=str) + "\n")
    else:
        print_tweak(stdout, result, exported)


# ---- similar ------------------------------------------------------------------------------
@app.command()
def similar(
    preset: Annotated[str, typer.Argument(help="A preset file (.vital, .syx, a plugin's .vstpreset) or an index "
                                               "preset id (see `presets list`).")],
    note: NoteOption = 60,
    velocity: VelocityOption = DEFAULT_VELOCITY,
    seconds: HoldOption = 1.5,
    top_k: TopKOption = DEFAULT_TOP_K,
    synth: SynthOption = None,
    index: IndexOption = None,
    json_output: JsonOption = False,
    export: ExportOption = None,
    plot: PlotOption = None,
    candidates: CandidatesOption = DEFAULT_RERANK_CANDIDATES,
    detail: DetailOption = 1,
    workers: WorkersOption = 2,
) -> None:
    """Find presets that sound like PRESET: from the library and your own presets.

    PRESET is played at --note and --velocity as its file plays in a fresh
    synth, and that sound is matched as `match` matches a recording: same
    distance, same labels, same table, JSON and files. PRESET itself is left out.

    Examples:
      patchpilot similar vital:crystal-pick
      patchpilot similar my_patch.syx --note 48 --synth vital --export out/
    """
    from patchpilot.api import PatchPilot
    from patchpilot.report import print_result, result_to_dict

    with _errors_to_exit():
        chosen = _check_synth(synth)
        if plot is not None:
            PatchPilot.check_plotting()
        with _warnings_to_stderr(), PatchPilot(index, workers=workers) as pilot:
            with _status(f"playing {preset} and matching it"):
                result = pilot.similar(preset, note=note, velocity=velocity, seconds=seconds, top_k=top_k,
                                       synth=chosen, candidates=candidates)
            with _status("exporting") if export is not None else nullcontext():
                exports = pilot.export(result, export) if export is not None else {}
            with _status("drawing") if plot is not None else nullcontext():
                plots = pilot.plot(result, plot) if plot is not None else None
    if json_output:
        sys.stdout.write(json.dumps(result_to_dict(result, exports, plots), indent=2) + "\n")
    else:
        print_result(stdout, result, exports, detail=detail, plots=plots)


# ---- serve --------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this computer only).")] = SERVE_HOST,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = SERVE_PORT,
    index: IndexOption = None,
    workers: WorkersOption = 2,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.01, help="Largest upload the page takes, MB.")] = 64,
    fx_plugins: FxPluginOption = None,
) -> None:
    """Open a local page: drop a sound, see and hear its matches, refine them.

    The page shows each match's picture, plays it, and plays it on a keyboard
    at any note (rendered by the real synth); its preset files download.
    It listens on this computer only unless --host says otherwise.
    Uploads go to a temporary folder, removed after each match.
    Needs FastAPI and uvicorn (the serve extra).

    Examples:
      patchpilot serve --port 8765
      patchpilot serve --fx-plugin ZamComp
    """
    from patchpilot.serve import check_available
    from patchpilot.serve import serve as run_server

    with _errors_to_exit():
        check_available()
        with _warnings_to_stderr():
            run_server(host=host, port=port, index=index, workers=workers, max_upload_mb=max_upload_mb,
                       fx_plugins=fx_plugins or (),
                       on_ready=lambda url: stderr.print(f"serving on {url} (Ctrl-C stops)", highlight=False))


# ---- presets ------------------------------------------------------------------------------
@presets_app.command("list")
def presets_list(
    synth: SynthOption = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category (bass, pad, ...).")] = None,
    designed: Annotated[bool, typer.Option("--designed", help="Only designed presets, not their variants.")] = False,
    user: Annotated[bool, typer.Option("--user", help="Only the presets you added, with the file each came from.")] = False,
    index: IndexOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the presets of an index.

    Ids with a ~ are variants of a designed preset (--designed leaves them out).
    Any id goes to patchpilot render.

    Examples:
      patchpilot presets list --synth vital --category pad --designed
      patchpilot presets list --user
    """
    from patchpilot.api import PatchPilot
    from patchpilot.report import print_preset_list

    with _errors_to_exit():
        with PatchPilot(index) as pilot:
            rows = pilot.list_presets(_check_synth(synth), category.lower() if category else None, user=user)
    if designed:
        rows = [r for r in rows if "~" not in r["preset_id"]]
    if json_output:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        print_preset_list(stdout, rows, sources=user)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
