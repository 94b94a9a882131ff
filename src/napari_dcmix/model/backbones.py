"""Feature extractors chosen by name, in plain torch.

torchvision is not a dependency (it often fails to import next to a CPU-only torch), so the two networks
the plugin offers are written out here. Each maps (B, in_channels, H, W) -> (B, out_features) with a global
average pool, so any tile size >= 32 px works and the head does not depend on the tile size.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import DcmixError

__all__ = ["BACKBONES", "SmallCNN", "ResNet18", "build_backbone"]


NORMS = ("group", "batch")


class SwitchedBatchNorm(nn.Module):
    """BatchNorm with its own statistics and scale per input stream, the stream chosen before each pass
    (``SmallCNN.use_stream``): a tower that reads several kinds of images (each phenotype's blend, single
    channels) normalises each kind as it trained on it, in training and in prediction alike."""

    def __init__(self, streams: int, channels: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(streams))
        self.active = 0

    def forward(self, x):
        return self.norms[self.active](x)


def _norm(channels: int, kind: str = "group", streams: int = 1) -> nn.Module:
    """GroupNorm by default: biologists fine-tune with small batches on a few wells, where BatchNorm's
    running statistics lag the weights and a model that fits its training tiles predicts one class in
    eval mode; GroupNorm behaves the same in training and inference. ``batch``: explain's tower (see
    ``model/coupled.py``), which trains on large batches of single-channel images, one set of
    statistics per stream of images."""
    if kind == "batch":
        return SwitchedBatchNorm(streams, channels) if streams > 1 else nn.BatchNorm2d(channels)
    return nn.GroupNorm(8 if channels % 8 == 0 else 1, channels)


def _conv_bn_relu(c_in: int, c_out: int, stride: int, norm: str = "group", streams: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        _norm(c_out, norm, streams),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four conv-GroupNorm-ReLU blocks (32-64-128-128), each with stride 2, global average pool.

    Sized to train to a useful model on a laptop CPU in minutes on 64-96 px tiles: every block halves the
    resolution (a 96 px tile ends at 6x6, a 32 px one at 2x2). Keeping full resolution in the first block
    made training ~2.7x slower on 2 CPU cores (batch 32, 96 px) for no gain on the digits benchmark.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (32, 64, 128, 128), norm: str = "group",
                 streams: int = 1) -> None:
        super().__init__()
        if norm not in NORMS:
            raise DcmixError(f"unknown normalisation {norm!r}; choose one of: {', '.join(NORMS)}")
        layers = []
        c_in = in_channels
        for width in widths:
            layers.append(_conv_bn_relu(c_in, width, stride=2, norm=norm, streams=streams))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c_in
        _init_weights(self)

    def forward(self, x):
        return self.pool(self.features(x)).flatten(1)

    def use_stream(self, stream: int) -> "SmallCNN":
        """Normalise the next passes with ``stream``'s statistics (towers built with several streams)."""
        for module in self.modules():
            if isinstance(module, SwitchedBatchNorm):
                module.active = stream
        return self


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _norm(c_out)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 layout (BasicBlock, [2, 2, 2, 2], widths 64-128-256-512) for any number of input channels.

    Standard 7x7/2 stem + 3x3/2 max pool: 32 px inputs end at 1x1 before the pool, which still works.
    """

    def __init__(self, in_channels: int, layers: tuple[int, ...] = (2, 2, 2, 2),
                 widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False),
            _norm(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages = []
        c_in = widths[0]
        for i, (n_blocks, width) in enumerate(zip(layers, widths)):
            blocks = [BasicBlock(c_in, width, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width, stride=1) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c_in
        _init_weights(self)
        # Zero the last norm's scale in each residual branch: every block starts as identity, which trains
        # faster from scratch on small data (Goyal et al. 2017).
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x):
        return self.pool(self.stages(self.stem(x))).flatten(1)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BACKBONES: dict[str, Callable[[int], nn.Module]] = {
    "small": SmallCNN,
    "resnet18": ResNet18,
}


def build_backbone(name: str, in_channels: int) -> nn.Module:
    """Build backbone ``name`` for ``in_channels`` inputs; it has ``out_features``."""
    try:
        factory = BACKBONES[name]
    except (KeyError, TypeError):
        valid = ", ".join(BACKBONES)
        raise DcmixError(f"unknown backbone {name!r}; choose one of: {valid}") from None
    if int(in_channels) < 1:
        raise DcmixError(f"a backbone needs at least 1 input channel, got {in_channels}")
    return factory(int(in_channels))
