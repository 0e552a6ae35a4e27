"""diffnlp: the tested package behind the "Diffusion in NLP" course notebooks."""

from .autoregressive import Autoregressive
from .discrete import MaskedDiffusion
from .embedding import EmbeddingDiffusion
from .gaussian import GaussianDiffusion
from .runtime import device, seed_everything, set_threads

__version__ = "0.1.0"
__all__ = ["Autoregressive", "EmbeddingDiffusion", "GaussianDiffusion", "MaskedDiffusion", "device",
           "seed_everything", "set_threads", "__version__"]
