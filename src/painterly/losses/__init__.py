"""Loss terms that compose: content, Gram style (classic and Keras), TV, guided (masked) style.

Each term is a :class:`LossTerm` (an ``nn.Module`` whose target is set once, or per batch or frame);
a :class:`LossCriterion` holds named, weighted terms on one loss network and returns
``dict[str, Tensor]`` with ``"total"``. :class:`PerceptualLoss` (or :func:`build_criterion`) builds
the content + style + TV criterion of the settings; both methods use it.

Units: content is the mean squared difference of activations; a style layer's loss is the mean
squared difference of Gram matrices normalized by C*H*W; each is multiplied by its layer weight and
by the term's global weight (the ``classic`` convention, the Lua neural-style's). The ``keras``
convention reproduces the Keras neural style example's formulas (see :mod:`painterly.losses.style`).
"""

from painterly.losses.container import TOTAL, LossCriterion, loss_values
from painterly.losses.content import ContentLoss, content_error
from painterly.losses.gram import blend_grams, gram_matrix
from painterly.losses.guides import (
    GuidedContentLoss,
    GuidedGramStyleLoss,
    guided_gram,
    keep_weight_map,
    propagate_mask,
)
from painterly.losses.perceptual import LOSS_CONVENTIONS, PerceptualLoss, build_criterion, deepest_layer
from painterly.losses.style import GramStyleLoss, KerasStyleLoss
from painterly.losses.term import LayerWeightedTerm, LossTerm
from painterly.losses.tv import TV_FORMS, PowerTVLoss, SquaredTVLoss, tv_loss, tv_term

__all__ = [
    "LOSS_CONVENTIONS",
    "TOTAL",
    "TV_FORMS",
    "ContentLoss",
    "GramStyleLoss",
    "GuidedContentLoss",
    "GuidedGramStyleLoss",
    "KerasStyleLoss",
    "LayerWeightedTerm",
    "LossCriterion",
    "LossTerm",
    "PerceptualLoss",
    "PowerTVLoss",
    "SquaredTVLoss",
    "blend_grams",
    "build_criterion",
    "content_error",
    "deepest_layer",
    "gram_matrix",
    "guided_gram",
    "keep_weight_map",
    "loss_values",
    "propagate_mask",
    "tv_loss",
    "tv_term",
]
