"""Refinement: the parameter search (``search.py``) and refining a match result with it
(``matches.py``)."""

from patchpilot.refine.matches import refine_result, refiner_for
from patchpilot.refine.search import (DEFAULT_STARTS, RefineCancelled, RefineOptions, RefineOutcome, RefineProgress,
                                      Refiner, SearchSpace, StartPoint, discrete_trials, fit_notes_for)

__all__ = ["DEFAULT_STARTS", "RefineCancelled", "RefineOptions", "RefineOutcome", "RefineProgress", "Refiner",
           "SearchSpace", "StartPoint", "discrete_trials", "fit_notes_for", "refine_result", "refiner_for"]
