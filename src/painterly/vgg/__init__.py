"""The loss network: VGG feature extractors and their pretrained weights."""

from painterly.vgg.network import ARCHITECTURES, VGG, layer_names
from painterly.vgg.weights import VGGWeights, load_vgg, load_weights

__all__ = ["ARCHITECTURES", "VGG", "VGGWeights", "layer_names", "load_vgg", "load_weights"]
