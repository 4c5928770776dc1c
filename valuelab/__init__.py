"""valuelab: measure and steer the value systems of large language models.

    >>> import valuelab
    >>> model = valuelab.StoredModel(valuelab.load_model("smollm2"), valuelab.Store("store.sqlite"))
    >>> valuelab.prefer(model, "You receive $100.", "You lose $100.").p_first
"""

from valuelab.elicit.pairwise import PairPreference, prefer, prefer_pairs, preferences_frame
from valuelab.errors import InputError, ValuelabError
from valuelab.models import ChoiceRequest, ChoiceResult, available_backends, load_model
from valuelab.store import Store, StoredModel

__version__ = "0.1.0"

__all__ = [
    "ChoiceRequest", "ChoiceResult", "InputError", "PairPreference", "Store", "StoredModel", "ValuelabError",
    "available_backends", "load_model", "prefer", "prefer_pairs", "preferences_frame",
]
