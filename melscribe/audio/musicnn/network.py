"""The musicnn and VGG taggers of ``musicnn`` (Pons & Serra, 2019) as ``torch.nn.Module``s.

Both take log-mel patches ``(batch, 187, 96)`` and return 50 tag logits; both run in eval mode
only (batch norm with the stored moving statistics, no dropout). Every convolution is followed by
ReLU and then batch norm, with TensorFlow's epsilon 0.001.

* :class:`Musicnn`: a musically motivated front end — two "timbral" convolutions spanning 7 frames
  and 38 or 67 mel bands, three "temporal" ones spanning 128, 64 or 32 frames and one band, each
  max-pooled over frequency — then three 1-D convolutions over time (the second and third with
  residual connections), and a back end that pools every feature over time (max and mean), then a
  dense layer of 200 units and the output layer.
* :class:`Vgg`: five 3×3 convolutions of 128 filters with max pooling, then the output layer.

Ported from the TensorFlow graph, with its padding rules: the temporal convolutions use
TensorFlow's "same" padding, which for an even kernel puts the extra frame at the end
(``(k-1)//2`` before, ``k//2`` after); the timbral and mid-end ones pad 3 frames on both sides.
:func:`load_tf_variables` maps the checkpoint's variables (``conv2d_3/kernel``, ``dense/bias``,
``batch_normalization_7/moving_mean``, …) onto the modules, transposing TensorFlow's
``[time, freq, in, out]`` kernels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from melscribe.errors import DataError

BN_EPS = 1e-3  # tf.layers.batch_normalization's default


class _ConvBlock(nn.Module):
    """Zero-pad time, convolve, ReLU, batch norm (the order of the TensorFlow graph)."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, pad_before: int, pad_after: int) -> None:
        super().__init__()
        self.conv = conv
        norm = nn.BatchNorm2d if isinstance(conv, nn.Conv2d) else nn.BatchNorm1d
        self.bn = norm(conv.out_channels, eps=BN_EPS)
        self.pad = (0, 0, pad_before, pad_after) if isinstance(conv, nn.Conv2d) else (pad_before, pad_after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(F.pad(x, self.pad))))


class _FreqPooledBlock(_ConvBlock):
    """A front-end block: pad time, convolve over ``(time, freq)``, ReLU, batch norm, max over frequency.

    Computed as convolve, max (or min) over frequency, ReLU, batch norm — the same numbers, since ReLU
    is monotone and batch norm is a per-channel affine map, increasing where its ``gamma`` is positive
    (take the max) and decreasing where negative (take the min) — but a third faster, as ReLU and
    batch norm then run on a tensor 30–96 times smaller.
    """

    def __init__(self, kernel_time: int, kernel_freq: int, filters: int, *, same: bool) -> None:
        before, after = ((kernel_time - 1) // 2, kernel_time // 2) if same else (3, 3)  # TensorFlow's "same", or 3+3
        super().__init__(nn.Conv2d(1, filters, (kernel_time, kernel_freq)), before, after)
        self.bn = nn.BatchNorm1d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = torch.aminmax(self.conv(F.pad(x, self.pad)), dim=3)
        pooled = torch.where((self.bn.weight >= 0)[:, None], high, low)
        return self.bn(F.relu(pooled))


class Musicnn(nn.Module):
    """musicnn: musically motivated front end, dense mid end, temporal-pooling back end."""

    def __init__(self, n_classes: int = 50, n_mels: int = 96, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        timbral, temporal = int(1.6 * 128), int(1.6 * 32)
        self.timbral = nn.ModuleList(
            _FreqPooledBlock(7, int(share * n_mels), timbral, same=False) for share in (0.4, 0.7)
        )
        self.temporal = nn.ModuleList(_FreqPooledBlock(k, 1, temporal, same=True) for k in (128, 64, 32))
        frontend_channels = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList(
            _ConvBlock(nn.Conv1d(c, midend_filters, 7), 3, 3) for c in (frontend_channels, midend_filters, midend_filters)
        )
        pooled = 2 * (frontend_channels + 3 * midend_filters)
        self.pool_bn = nn.BatchNorm1d(pooled, eps=BN_EPS)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.output = nn.Linear(backend_units, n_classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Tag logits ``(batch, n_classes)`` of log-mel patches ``(batch, time, mels)``."""
        x = self.input_bn(patches.unsqueeze(1))
        front = torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)
        features, h = [front], front
        for i, block in enumerate(self.midend):
            h = block(h) if i == 0 else block(h) + h
            features.append(h)
        features = torch.cat(features, dim=1)  # (batch, channels, time)
        # TensorFlow flattens [max, mean] per channel: max_0, mean_0, max_1, mean_1, …
        pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
        hidden = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return self.output(hidden)

    def tf_layers(self) -> list[tuple[str, nn.Module]]:
        """(TensorFlow scope, module) of every layer with variables, in the graph's naming order."""
        blocks = [*self.timbral, *self.temporal, *self.midend]
        norms = [self.input_bn, *(b.bn for b in blocks), self.pool_bn, self.dense_bn]
        return (
            _numbered("conv2d", [b.conv for b in blocks])
            + _numbered("batch_normalization", norms)
            + _numbered("dense", [self.dense, self.output])
        )


class Vgg(nn.Module):
    """The VGG-like baseline: five 3×3 conv blocks with max pooling, then a dense output layer."""

    #: (pool size, pool stride) after each conv block, over (time, freq).
    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_classes: int = 50, filters: int = 128, n_frames: int = 187, n_mels: int = 96):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.blocks = nn.ModuleList(
            _ConvBlock(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1), 0, 0)
            for i in range(len(self.POOLS))
        )
        for (pt, pf), (st, sf) in self.POOLS:
            n_frames, n_mels = (n_frames - pt) // st + 1, (n_mels - pf) // sf + 1
        self.output = nn.Linear(filters * n_frames * n_mels, n_classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Tag logits ``(batch, n_classes)`` of log-mel patches ``(batch, time, mels)``."""
        x = self.input_bn(patches.unsqueeze(1))
        for block, (size, stride) in zip(self.blocks, self.POOLS):
            x = F.max_pool2d(block(x), size, stride)
        return self.output(x.permute(0, 2, 3, 1).flatten(1))  # TensorFlow flattens (time, freq, channel)

    def tf_layers(self) -> list[tuple[str, nn.Module]]:
        """(TensorFlow scope, module) of every layer with variables."""
        norms = [self.input_bn, *(b.bn for b in self.blocks)]
        convs = [(f"{i + 1}CNN", b.conv) for i, b in enumerate(self.blocks)]
        return convs + _numbered("batch_normalization", norms) + [("dense", self.output)]


def _numbered(scope: str, modules: list[nn.Module]) -> list[tuple[str, nn.Module]]:
    """TensorFlow's automatic layer names: ``scope``, ``scope_1``, ``scope_2``, …"""
    return [(scope if i == 0 else f"{scope}_{i}", m) for i, m in enumerate(modules)]


def load_tf_variables(model: Musicnn | Vgg, variables: dict[str, np.ndarray]) -> None:
    """Copy the checkpoint's variables into ``model``; a :class:`DataError` if one is missing or misshapen."""
    for scope, module in model.tf_layers():
        for param, tensor in _converted(scope, module, variables).items():
            target = getattr(module, param)
            if tuple(tensor.shape) != tuple(target.shape):
                raise DataError(f"checkpoint variable {scope} gives {param} shape {tuple(tensor.shape)}, "
                                f"the model expects {tuple(target.shape)}")
            with torch.no_grad():
                target.copy_(tensor)


def _converted(scope: str, module: nn.Module, variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A layer's TensorFlow variables as torch tensors named and laid out as ``module``'s."""

    def var(name: str) -> torch.Tensor:
        key = f"{scope}/{name}"
        if key not in variables:
            raise DataError(f"checkpoint lacks variable {key}")
        return torch.from_numpy(np.asarray(variables[key], dtype=np.float32))

    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return {"weight": var("gamma"), "bias": var("beta"),
                "running_mean": var("moving_mean"), "running_var": var("moving_variance")}
    kernel = var("kernel")
    if isinstance(module, nn.Linear):
        kernel = kernel.T
    elif isinstance(module, nn.Conv2d) and kernel.ndim == 4:  # [time, freq, in, out] -> [out, in, time, freq]
        kernel = kernel.permute(3, 2, 0, 1)
    elif isinstance(module, nn.Conv1d) and kernel.ndim == 4:  # Conv1d from a [time, channels, 1, out] kernel -> [out, channels, time]
        kernel = kernel[:, :, 0, :].permute(2, 1, 0)
    return {"weight": kernel.contiguous(), "bias": var("bias")}


def build_network(architecture: str, variables: dict[str, np.ndarray]) -> Musicnn | Vgg:
    """A :class:`Musicnn` or :class:`Vgg` (``architecture``) in eval mode with the checkpoint's weights."""
    model = {"musicnn": Musicnn, "vgg": Vgg}[architecture]()
    load_tf_variables(model, variables)
    return model.eval()
