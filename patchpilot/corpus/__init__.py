"""Training corpora: many patches per synth rendered at several notes and velocities, in
sharded files that the training scripts read (``patchpilot corpus``)."""

from patchpilot.corpus.build import CorpusBuilder, CorpusPlan, CorpusReport, CorpusRequest, build_corpus
from patchpilot.corpus.patches import CorpusPatch, PatchMaker
from patchpilot.corpus.shards import Corpus, CorpusArrays, CorpusError

__all__ = ["Corpus", "CorpusArrays", "CorpusBuilder", "CorpusError", "CorpusPatch", "CorpusPlan", "CorpusReport",
           "CorpusRequest", "PatchMaker", "build_corpus"]
