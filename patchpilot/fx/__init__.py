"""Effects after the synth: the chain an answer carries (``chain.py``), its search
(``search.py``), a user's VST3 effects as kinds of it (``plugin.py``) and reading its JSON
back (``files.py``)."""

from patchpilot.fx.chain import EFFECT_KINDS, Effect, FxChain
from patchpilot.fx.files import chain_from_list, load_chain
from patchpilot.fx.search import ChainSearch

__all__ = ["EFFECT_KINDS", "ChainSearch", "Effect", "FxChain", "chain_from_list", "load_chain"]
