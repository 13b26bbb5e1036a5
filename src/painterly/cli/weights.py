"""``painterly weights``: where the VGG weights come from, and a download for users who are online."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("weights", help="show or download the VGG loss network weights")
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="which weights each network would use")
    info.set_defaults(handler=_info)
    download = sub.add_parser("download", help="download weights (online only), check the hash, cache them")
    from painterly.vgg.sources import DOWNLOADS

    download.add_argument("key", choices=sorted(DOWNLOADS))
    download.set_defaults(handler=_download)


def _info(args: argparse.Namespace) -> int:
    from painterly.errors import PainterlyError
    from painterly.vgg.weights import cache_dir, load_weights

    print(f"cache: {cache_dir()}")
    for arch in ("vgg19", "vgg16"):
        try:
            weights = load_weights(arch)
            print(f"{arch}: {weights.origin} (input convention: {weights.convention})")
        except PainterlyError as exc:
            print(f"{arch}: not available: {exc}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from painterly.errors import shown_path
    from painterly.vgg.weights import download_weights

    print(f"saved {shown_path(download_weights(args.key))}")
    return 0
