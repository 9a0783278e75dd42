"""Effects after the synth: the chain an answer carries (``chain.py``) and its search (``search.py``)."""

from patchpilot.fx.chain import EFFECT_KINDS, Effect, FxChain
from patchpilot.fx.search import ChainSearch

__all__ = ["EFFECT_KINDS", "Effect", "FxChain", "ChainSearch"]
