"""diffnlp: the tested package behind the "Diffusion in NLP" course notebooks (docs/architecture.md).

    from diffnlp import MaskedDiffusion, load_pretrained
    model, process, tokenizer, _ = load_pretrained("stories-mdlm")
    stories = tokenizer.decode_batch(process.sample(model, 4, 32, 32).run())
"""

from .models.transformer import Transformer
from .processes.autoregressive import Autoregressive
from .processes.block import BlockDiffusion
from .processes.d3pm import D3PM
from .processes.embedding import EmbeddingDiffusion
from .processes.flow_matching import MaskedFlowMatching
from .processes.gaussian import GaussianDiffusion
from .processes.masked import MaskedDiffusion
from .processes.sedd import ScoreEntropy
from .runtime import device, seed_everything, set_threads
from .training.fit import fit
from .training.pretrained import load_pretrained

__version__ = "0.1.0"
__all__ = ["Autoregressive", "BlockDiffusion", "D3PM", "EmbeddingDiffusion", "GaussianDiffusion", "MaskedDiffusion",
           "MaskedFlowMatching", "ScoreEntropy", "Transformer", "device", "fit", "load_pretrained", "seed_everything",
           "set_threads", "__version__"]
