"""The training losses, one class per module (as in sentence-transformers): :class:`DenoisedMNRLLoss`,
:class:`MNRLPlusMarginMSE`, and :class:`ScaledSimilarity`, the similarity MarginMSE's student margins use."""

from melscribe.train.losses.denoised_mnrl import DenoisedMNRLLoss
from melscribe.train.losses.mnrl_plus_margin_mse import MNRLPlusMarginMSE
from melscribe.train.losses.scaled_similarity import ScaledSimilarity

__all__ = ["DenoisedMNRLLoss", "MNRLPlusMarginMSE", "ScaledSimilarity"]
