"""Source separation with Demucs: the synth layer of a song, as one stem.

This is the only module that imports torch and demucs, and only inside the functions that
need them: ``patchpilot --help`` and matching a short clip never load either.

Weights are whatever ``demucs`` itself finds: its download cache (``torch.hub``'s
``checkpoints`` folder, or the HuggingFace cache) on a machine that downloaded them once,
or a local folder (``--demucs-repo DIR`` / ``$PATCHPILOT_DEMUCS_REPO``) holding the
``.th`` files. A missing model is one :class:`DemucsModelMissingError` that says what to
download and where to put it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from patchpilot.audio.io import Audio, load_stereo
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_DEMUCS_MODEL, DEFAULT_STEM
from patchpilot.errors import ModelUnavailableError, UsageError

if TYPE_CHECKING:
    import torch

#: Environment variable naming a local folder of Demucs models (the ``--demucs-repo`` default).
DEMUCS_REPO_ENV = "PATCHPILOT_DEMUCS_REPO"
#: Where demucs downloads the weights of its named models from (``demucs/pretrained.py``).
DEMUCS_DOWNLOAD_ROOT = "https://dl.fbaipublicfiles.com/demucs/"

#: Seconds of audio handed to Demucs at a time. Its output holds every stem of what it was
#: given (four stereo float32 copies), so a ten-minute song in one call would need about
#: 1 GB; blocks keep that to ~85 MB and only the chosen stem is kept for the whole song.
SEPARATION_BLOCK_SECONDS = 60.0
#: Consecutive blocks overlap by this much and are cross-faded, so no seam is audible.
SEPARATION_BLOCK_OVERLAP_SECONDS = 2.0
#: Overlap of Demucs' own segments inside a block (its default).
DEMUCS_SEGMENT_OVERLAP = 0.25

#: Progress callback: (stage, done, total), as the index builder's.
Progress = Callable[[str, int, int], None]


class DemucsModelMissingError(ModelUnavailableError):
    """The Demucs model's weights are neither in demucs' caches nor in the local folder."""


class DemucsNotInstalledError(ModelUnavailableError):
    """demucs (or torch) is not installed: the core install has no separation."""


@dataclass(frozen=True)
class SeparationOptions:
    """How ``match`` treats a song: whether to separate, which stem, which model from where.

    ``separate=None`` decides from the input: what sounds like a song (drums, many notes:
    ``content.looks_like_song``) is separated, one sound is not, however long it rings.
    """

    separate: bool | None = None
    stem: str = DEFAULT_STEM
    model: str = DEFAULT_DEMUCS_MODEL
    repo: Path | None = None

    def wanted_for(self, song: bool) -> bool:
        """Whether to separate an input that is (``song``) or is not a song."""
        return self.separate if self.separate is not None else song


def demucs_repo(repo: Path | str | None = None) -> Path | None:
    """The local model folder: the argument, else ``$PATCHPILOT_DEMUCS_REPO``, else none."""
    if repo is not None:
        return Path(repo).expanduser()
    from_env = os.environ.get(DEMUCS_REPO_ENV)
    return Path(from_env).expanduser() if from_env else None


# ---- what a named model is made of (demucs' bundled model list; no torch needed) -------------
def _bundled_remote() -> Path | None:
    """demucs' ``remote/`` folder (bag YAMLs and the list of weight files), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "remote"


def _bag_definition(name: str, folder: Path | None) -> dict[str, Any] | None:
    """The ``{name}.yaml`` of a bag of models (``models``, optional ``weights``/``segment``)."""
    if folder is None or not (folder / f"{name}.yaml").is_file():
        return None
    import yaml  # a demucs dependency

    definition = yaml.safe_load((folder / f"{name}.yaml").read_text())
    return definition if isinstance(definition, dict) and definition.get("models") else None


def weight_files(name: str) -> list[str]:
    """Download addresses of the weight files of a named Demucs model (empty if unknown)."""
    remote = _bundled_remote()
    bag = _bag_definition(name, remote)
    signatures = [str(s) for s in bag["models"]] if bag else [name]
    addresses: dict[str, str] = {}
    if remote is not None and (remote / "files.txt").is_file():
        root = ""
        for line in (remote / "files.txt").read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("root:"):
                root = line.split(":", 1)[1].strip()
            else:
                addresses[line.split("-", 1)[0]] = DEMUCS_DOWNLOAD_ROOT + root + line
    return [addresses[s] for s in signatures if s in addresses]


def known_models() -> list[str]:
    remote = _bundled_remote()
    return sorted(p.stem for p in remote.glob("*.yaml")) if remote is not None and remote.is_dir() else []


def _signatures_in(folder: Path) -> set[str]:
    """Model signatures of a local folder, named as demucs' LocalRepo names them."""
    return {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem for p in folder.glob("*.th")}


def weights_available(name: str = DEFAULT_DEMUCS_MODEL, repo: Path | str | None = None) -> bool:
    """Whether the model's weights are on this machine (never downloads anything)."""
    folder = demucs_repo(repo)
    if folder is not None:
        return folder.is_dir() and _missing_in_folder(name, folder) == []
    return _in_torch_hub_cache(name) or _in_huggingface_cache(name)


def _in_torch_hub_cache(name: str) -> bool:
    """Where demucs' legacy download puts the weights (``$TORCH_HOME/hub/checkpoints``)."""
    files = [url.rsplit("/", 1)[1] for url in weight_files(name)]
    if not files:
        return False
    try:
        import torch
    except ImportError:
        return False
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return all((checkpoints / f).is_file() for f in files)


def _in_huggingface_cache(name: str) -> bool:
    """Where demucs' HuggingFace download puts the weights (the HF cache)."""
    try:
        from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    bag = try_to_load_from_cache(f"{DEFAULT_NAMESPACE}/{hf_repo_name(name)}", f"{name}.yaml")
    return isinstance(bag, str)


def _missing_in_folder(name: str, folder: Path) -> list[str] | None:
    """Weight files the folder lacks for ``name``: [] when complete, None when the name is
    neither in the folder nor a model demucs knows."""
    present = _signatures_in(folder)
    own = _bag_definition(name, folder)
    if name in present:
        return []
    if own is not None:
        return [str(s) for s in own["models"] if str(s) not in present]
    bundled = _bag_definition(name, _bundled_remote())
    if bundled is None:
        return None
    urls = {url.rsplit("/", 1)[1].split("-", 1)[0]: url.rsplit("/", 1)[1] for url in weight_files(name)}
    return [urls.get(str(s), f"{s}-*.th") for s in bundled["models"] if str(s) not in present]


def _missing_message(name: str, folder: Path | None, detail: str) -> str:
    urls = weight_files(name)
    files = " and ".join(urls) if urls else f"the .th files of '{name}'"
    if folder is None:
        return (f"Demucs model '{name}' is not on this machine and could not be downloaded ({detail}): "
                "run once with internet access (demucs downloads and caches it), or download "
                f"{files} into a folder given by --demucs-repo DIR or ${DEMUCS_REPO_ENV}, or use --no-separate")
    return f"Demucs model '{name}' is not usable from {folder} ({detail}): download {files} into it, or use --no-separate"


def _load_model(name: str, folder: Path | None) -> Any:
    """A demucs model or bag of models in eval mode, or one actionable error."""
    try:
        from demucs.apply import BagOfModels
        from demucs.pretrained import get_model
        from demucs.repo import LocalRepo
    except ImportError as exc:
        raise DemucsNotInstalledError(
            f"separating a song needs demucs and torch ({exc}): pip install 'patchpilot[separate]', "
            "or match without separation (--no-separate)") from None

    if folder is None:
        if name not in known_models():
            raise UsageError(f"unknown Demucs model '{name}' (known: {', '.join(known_models())}); "
                             "a model of your own goes in a folder given by --demucs-repo")
        if not weights_available(name):
            # Offline, demucs would print its "Downloading: ..." line before failing; ask first.
            unreachable = _download_unreachable()
            if unreachable:
                raise DemucsModelMissingError(_missing_message(name, None, unreachable))
        try:
            return get_model(name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - demucs calls sys.exit() for some load failures
            raise DemucsModelMissingError(_missing_message(name, None, _short(exc))) from None

    if not folder.is_dir():
        raise DemucsModelMissingError(_missing_message(name, folder, "no such folder"))
    missing = _missing_in_folder(name, folder)
    if missing is None:
        held = sorted(_signatures_in(folder) | {p.stem for p in folder.glob("*.yaml")})
        raise DemucsModelMissingError(
            f"no Demucs model '{name}' in {folder} (it holds: {', '.join(held) or 'nothing'}); "
            f"choose one with --demucs-model, or match without separation (--no-separate)")
    if missing:
        raise DemucsModelMissingError(_missing_message(name, folder, f"missing {', '.join(missing)}"))
    try:
        if name in _signatures_in(folder) or _bag_definition(name, folder) is not None:
            return get_model(name, repo=folder)
        # Only the weights are in the folder: assemble the bag from demucs' bundled definition,
        # so users need not copy demucs' YAML files next to them.
        bag = _bag_definition(name, _bundled_remote())
        assert bag is not None
        local = LocalRepo(folder)
        model = BagOfModels([local.get_model(str(s)) for s in bag["models"]], bag.get("weights"), bag.get("segment"))
        return model.eval()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a corrupt or truncated download, a bad checksum
        raise DemucsModelMissingError(_missing_message(name, folder, f"unreadable: {_short(exc)}")) from None


def _download_unreachable(timeout_seconds: float = 5.0) -> str | None:
    """Why demucs' download server cannot be reached, or None when it can."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(DEMUCS_DOWNLOAD_ROOT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout_seconds).close()
    except OSError as exc:
        return f"no connection to {host}: {_short(exc)}"
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class StemSeparator:
    """One Demucs model, loaded on first use and kept for every input."""

    def __init__(self, model: str = DEFAULT_DEMUCS_MODEL, repo: Path | str | None = None) -> None:
        self.model_name = model
        self.repo = demucs_repo(repo)
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load_model(self.model_name, self.repo)
        return self._model

    @property
    def sample_rate(self) -> int:
        return int(self.model.samplerate)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.model.sources)

    def check_stem(self, stem: str) -> None:
        if stem not in self.sources:
            raise UsageError(f"--stem {stem}: the Demucs model '{self.model_name}' separates "
                             f"{', '.join(self.sources)}")

    def separate(self, mix: np.ndarray, stems: Sequence[str] | None = None,
                 progress: Progress | None = None) -> dict[str, np.ndarray]:
        """Split ``(2, frames)`` float32 at :attr:`sample_rate` into stems of the same shape."""
        wanted = tuple(stems) if stems is not None else self.sources
        out = {stem: np.zeros_like(mix, dtype=np.float32) for stem in wanted}
        for where, estimate in self._blocks(mix, wanted, progress):
            for k, stem in enumerate(wanted):
                out[stem][:, where] += estimate[k]
        return out

    def _blocks(self, mix: np.ndarray, stems: Sequence[str],
                progress: Progress | None) -> Iterator[tuple[slice, np.ndarray]]:
        """The song through Demucs in overlapping blocks: (where, ``stems`` of that block,
        already weighted so that overlapping blocks add up). Memory stays bounded by the
        block, whatever the song's length."""
        import torch

        for stem in stems:
            self.check_stem(stem)
        indices = [self.sources.index(stem) for stem in stems]
        rate = self.sample_rate
        length = mix.shape[-1]
        block = int(SEPARATION_BLOCK_SECONDS * rate)
        overlap = int(SEPARATION_BLOCK_OVERLAP_SECONDS * rate)
        starts = list(range(0, max(1, length - overlap), block - overlap))
        # Normalised by the whole song, as demucs' own separator does, so that every block
        # sees the same scale.
        mean = float(mix.mean())
        std = float(mix.mean(axis=0).std()) + 1e-8
        counter = _SegmentCounter(self._segments_per_call, [min(block, length - s) for s in starts], progress)
        for start in starts:
            stop = min(length, start + block)
            chunk = torch.from_numpy(np.ascontiguousarray((mix[:, start:stop] - mean) / std, dtype=np.float32))
            estimate = self._apply(chunk[None], counter)[0, indices].numpy() * std + mean
            yield slice(start, stop), estimate * _crossfade(stop - start, overlap if start > 0 else 0,
                                                            overlap if stop < length else 0)

    def _apply(self, mix: torch.Tensor, counter: _SegmentCounter) -> torch.Tensor:
        import torch
        from demucs.apply import apply_model

        with torch.no_grad():
            # shifts=0: deterministic, and each shift would cost a whole extra pass.
            return apply_model(self.model, mix, shifts=0, split=True, overlap=DEMUCS_SEGMENT_OVERLAP,
                               progress=False, callback=counter)

    def _segments_per_call(self, length: int) -> int:
        """How many model calls ``apply_model`` makes for ``length`` frames (for progress)."""
        models = list(getattr(self.model, "models", [self.model]))
        total = 0
        for model in models:
            segment_length = int(float(model.segment) * model.samplerate)
            stride = max(1, int((1 - DEMUCS_SEGMENT_OVERLAP) * segment_length))
            total += len(range(0, length, stride))
        return total

    def stem_audio(self, source: str | Path | bytes, stem: str, *, name: str | None = None,
                   sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, progress: Progress | None = None) -> Audio:
        """One stem of an audio file (path or bytes), mono at ``sample_rate``, ready to match."""
        self.check_stem(stem)
        mix = load_stereo(source, self.sample_rate, name=name, warn_trimmed=False)  # PatchPilot.match loaded it first and warned
        separated = np.zeros(mix.shape[-1], dtype=np.float32)
        for where, estimate in self._blocks(mix, [stem], progress):
            separated[where] += estimate[0].mean(axis=0)  # kept mono: half the memory of a long song
        del mix
        # Demucs adds the mix's mean back to every stem; a DC offset would read as sound.
        separated -= separated.mean()
        if sample_rate != self.sample_rate:
            import soxr

            separated = soxr.resample(separated, self.sample_rate, sample_rate, quality="HQ")
        label = name or (str(source) if not isinstance(source, bytes) else "<stdin>")
        return Audio(np.ascontiguousarray(separated, dtype=np.float32), sample_rate, label)


class _SegmentCounter:
    """Counts the model calls ``apply_model`` reports and forwards them as progress."""

    def __init__(self, per_call: Callable[[int], int], lengths: Sequence[int], progress: Progress | None) -> None:
        self.total = sum(per_call(n) for n in lengths) if progress is not None else 0
        self.done = 0
        self.progress = progress

    def __call__(self, event: dict) -> None:
        if self.progress is not None and event.get("state") == "end":
            self.done = min(self.done + 1, self.total)
            self.progress("separate", self.done, self.total)


def _crossfade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Block weights: linear ramps over the overlaps, so overlapping blocks sum to one."""
    weights = np.ones(length, dtype=np.float32)
    if fade_in:
        weights[:fade_in] = np.linspace(0.0, 1.0, fade_in, endpoint=False, dtype=np.float32)
    if fade_out:
        weights[length - fade_out:] *= np.linspace(1.0, 0.0, fade_out, endpoint=False, dtype=np.float32)
    return weights
