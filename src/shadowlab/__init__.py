"""shadowlab: learning from quantum experiments with classical shadows."""

from shadowlab.data.dataset import ShadowData
from shadowlab.errors import ShadowlabError
from shadowlab.paulis import PauliString, PauliSum

__version__ = "0.1.0"

__all__ = ["PauliString", "PauliSum", "ShadowData", "ShadowlabError", "__version__"]
