"""diffnlp: the tested package behind the "Diffusion in NLP" course notebooks."""

from .processes.autoregressive import Autoregressive
from .processes.embedding import EmbeddingDiffusion
from .processes.gaussian import GaussianDiffusion
from .processes.masked import MaskedDiffusion
from .runtime import device, seed_everything, set_threads

__version__ = "0.1.0"
__all__ = ["Autoregressive", "EmbeddingDiffusion", "GaussianDiffusion", "MaskedDiffusion", "device",
           "seed_everything", "set_threads", "__version__"]
