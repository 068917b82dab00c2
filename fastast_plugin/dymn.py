"""EfficientAT's dynamic MobileNet (DyMN) and its log-mel front-end.

DyMN (Schmid et al., "Dynamic Convolutional Neural Networks as Efficient
Pre-trained Audio Models", IEEE/ACM TASLP 2024) is a MobileNetV3-style CNN
whose blocks use dynamic convolutions, dynamic ReLU and coordinate attention,
all driven by a per-block context vector. This module re-implements it with
the parameter and buffer names of EfficientAT's released state dicts, so that
``dymn04_as.pt``, ``dymn10_as.pt``, ``dymn20_as_mAP_493.pt`` and the
ImageNet variants load strictly, together with EfficientAT's 32 kHz log-mel
front-end (``AugmentMelSTFT``) that the released weights expect.

Authors
 * fastast developers 2026
"""

import math
import os
import pickle
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torchaudio
from speechbrain.utils.autocast import fwd_default_precision
from speechbrain.utils.logger import get_logger
from torch import nn

__all__ = [
    "DYMN_BASE_URL",
    "DYMN_CHECKPOINTS",
    "DyMN",
    "DyMNFrontEnd",
    "kaldi_mel_banks",
    "load_dymn",
    "load_dymn_state_dict",
    "make_divisible",
    "read_checkpoint",
    "temperature_schedule",
]

logger = get_logger(__name__)

# Release that hosts EfficientAT's pretrained weights.
DYMN_BASE_URL = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"

# Checkpoint name -> file in the release. "_im" files are ImageNet weights
# (trained to a final kernel-attention temperature of 30), "_as" files are
# AudioSet weights (temperature 1). "dymn20_as" points to the current
# upstream default; "(1)".."(3)" are the alternative dymn20 AudioSet files.
DYMN_CHECKPOINTS = {
    "dymn04_im": "dymn04_im.pt",
    "dymn10_im": "dymn10_im.pt",
    "dymn20_im": "dymn20_im.pt",
    "dymn04_as": "dymn04_as.pt",
    "dymn10_as": "dymn10_as.pt",
    "dymn20_as": "dymn20_as_mAP_493.pt",
    "dymn20_as(1)": "dymn20_as.pt",
    "dymn20_as(2)": "dymn20_as_mAP_489.pt",
    "dymn20_as(3)": "dymn20_as_mAP_490.pt",
}

_NAME_TO_WIDTH = {"dymn04": 0.4, "dymn10": 1.0, "dymn20": 2.0}

# MobileNetV3-Large without SE, as used by DyMN:
# (in, kernel, expanded, out, activation, index into ``strides`` or None).
_BLOCK_TABLE = (
    (16, 3, 16, 16, "relu", None),
    (16, 3, 64, 24, "relu", 0),
    (24, 3, 72, 24, "relu", None),
    (24, 5, 72, 40, "relu", 1),
    (40, 5, 120, 40, "relu", None),
    (40, 5, 120, 40, "relu", None),
    (40, 3, 240, 80, "hardswish", 2),
    (80, 3, 200, 80, "hardswish", None),
    (80, 3, 184, 80, "hardswish", None),
    (80, 3, 184, 80, "hardswish", None),
    (80, 3, 480, 112, "hardswish", None),
    (112, 3, 672, 112, "hardswish", None),
    (112, 5, 672, 160, "hardswish", 3),
    (160, 5, 960, 160, "hardswish", None),
    (160, 5, 960, 160, "hardswish", None),
)

# Every BatchNorm in DyMN uses TensorFlow-style settings.
_BN_EPS = 0.001
_BN_MOMENTUM = 0.01

# Log-mel constants of EfficientAT's front-end.
_LOG_OFFSET = 1e-5
_NORM_SHIFT = 4.5
_NORM_SCALE = 5.0


def make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds a channel count to a multiple of ``divisor`` (MobileNet rule).

    The result is at least ``divisor`` and never more than 10 % below
    ``value``.

    Arguments
    ---------
    value : float
        The unrounded channel count.
    divisor : int
        The multiple to round to.

    Returns
    -------
    int
        The rounded channel count.

    Example
    -------
    >>> make_divisible(16 * 0.4), make_divisible(1280 * 0.4), make_divisible(50)
    (8, 512, 48)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def temperature_schedule(
    epoch: int, max_temperature: float = 30.0, min_temperature: float = 1.0
) -> float:
    """Kernel-attention temperature for training DyMN from scratch.

    EfficientAT anneals the softmax temperature of the dynamic convolutions
    linearly by one per epoch: ``max(max_temperature - epoch,
    min_temperature)``: 30, 29, ..., 2, 1, 1, ... for EfficientAT's 30 -> 1.

    Arguments
    ---------
    epoch : int
        Zero-based epoch index (SpeechBrain's ``EpochCounter`` is one-based:
        pass ``epoch - 1``).
    max_temperature : float
        Temperature at epoch 0.
    min_temperature : float
        Lower bound reached after ``max_temperature - min_temperature``
        epochs.

    Returns
    -------
    float
        The temperature for this epoch.

    Example
    -------
    >>> [temperature_schedule(e) for e in (0, 1, 28, 29, 100)]
    [30.0, 29.0, 2.0, 1.0, 1.0]
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if min_temperature <= 0 or max_temperature < min_temperature:
        raise ValueError(
            "temperatures must satisfy 0 < min_temperature <= max_temperature, "
            f"got min_temperature={min_temperature}, "
            f"max_temperature={max_temperature}"
        )
    return float(max(max_temperature - epoch, min_temperature))


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


def _activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Hardswish()


class _DynamicConv(nn.Module):
    """Convolution whose kernel is a per-sample mixture of K kernels.

    The mixture weights are ``softmax(Linear(context) / temperature)``. The
    K kernels are stored as ``weight`` with shape
    ``[1, 1, K, out * in / groups * k * k]`` (row ``j`` is kernel ``j``
    flattened in ``[out, in / groups, k, k]`` order) and the attention
    Linear as ``residuals.0``, as in EfficientAT.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        context_dim: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        num_kernels: int = 4,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.num_kernels = num_kernels
        self.residuals = nn.Sequential(nn.Linear(context_dim, num_kernels))
        kernel_numel = out_channels * (in_channels // groups) * kernel_size**2
        self.weight = nn.Parameter(torch.empty(1, 1, num_kernels, kernel_numel))
        self.reset_kernels()

    @property
    def kernel_shape(self) -> Tuple[int, int, int, int]:
        """Shape of one kernel: ``(out, in / groups, k, k)``."""
        k = self.kernel_size
        return (self.out_channels, self.in_channels // self.groups, k, k)

    def reset_kernels(self):
        """Kaiming-normal (fan-out) initialisation of each of the K kernels."""
        with torch.no_grad():
            for j in range(self.num_kernels):
                kernel = torch.empty(self.kernel_shape)
                nn.init.kaiming_normal_(kernel, mode="fan_out")
                self.weight[0, 0, j].copy_(kernel.flatten())

    def attention(self, context: torch.Tensor, temperature: float) -> torch.Tensor:
        """Kernel attention ``[batch, K]`` for a context ``[batch, H]``."""
        return torch.softmax(self.residuals(context) / temperature, dim=-1)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """Convolves each sample of ``x`` with its own aggregated kernel."""
        batch, channels, height, width = x.shape
        attention = self.attention(context, temperature)
        kernels = attention @ self.weight.view(self.num_kernels, -1)
        kernels = kernels.reshape(batch * self.out_channels, *self.kernel_shape[1:])
        # One grouped convolution: the batch is folded into the channels.
        out = F.conv2d(
            x.reshape(1, batch * channels, height, width),
            kernels,
            stride=self.stride,
            padding=self.padding,
            groups=self.groups * batch,
        )
        return out.view(batch, self.out_channels, out.shape[-2], out.shape[-1])


class _DyReLUB(nn.Module):
    """Channel-wise dynamic ReLU (DyReLU-B) with ``num_pieces`` linear pieces.

    ``theta = 2 * sigmoid(coef_net(context)) - 1`` is read channel-major
    (entry ``c * 2M + j``); coefficients are ``theta * lambdas + init_v``,
    i.e. slopes ``a_j`` then intercepts ``b_j``, and the output is
    ``max_j(a_j * x + b_j)``. With ``theta = 0`` this is a plain ReLU.
    """

    def __init__(self, channels: int, context_dim: int, num_pieces: int = 2):
        super().__init__()
        self.channels = channels
        self.num_pieces = num_pieces
        self.coef_net = nn.Sequential(
            nn.Linear(context_dim, 2 * num_pieces * channels)
        )
        lambdas = [1.0] * num_pieces + [0.5] * num_pieces
        init_v = [1.0] + [0.0] * (2 * num_pieces - 1)
        self.register_buffer("lambdas", torch.tensor(lambdas))
        self.register_buffer("init_v", torch.tensor(init_v))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Applies the per-sample, per-channel piecewise-linear activation."""
        theta = 2.0 * torch.sigmoid(self.coef_net(context)) - 1.0
        theta = theta.view(x.shape[0], self.channels, 1, 1, 2 * self.num_pieces)
        coefs = theta * self.lambdas + self.init_v
        slopes, intercepts = coefs.split(self.num_pieces, dim=-1)
        return (x.unsqueeze(-1) * slopes + intercepts).amax(dim=-1)


class _ContextGen(nn.Module):
    """Per-block context: frequency and time profiles through a shared 1x1 conv.

    Returns ``(h_c [batch, H], g_f [batch, C_exp, F', 1],
    g_t [batch, C_exp, 1, T'])`` where ``h_c`` drives the dynamic convolutions
    and DyReLU, and ``g_f``/``g_t`` are the coordinate-attention logits at
    the block's output resolution.
    """

    def __init__(
        self,
        in_channels: int,
        context_dim: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
    ):
        super().__init__()
        self.joint_conv = nn.Conv2d(in_channels, context_dim, 1, bias=False)
        self.joint_norm = _batch_norm(context_dim)
        self.joint_act = nn.Hardswish()
        self.conv_f = nn.Conv2d(context_dim, out_channels, 1)
        self.conv_t = nn.Conv2d(context_dim, out_channels, 1)
        if stride > 1:
            self.pool_f = nn.AvgPool2d((3, 1), stride=(stride, 1), padding=(1, 0))
            self.pool_t = nn.AvgPool2d((1, 3), stride=(1, stride), padding=(0, 1))
        else:
            self.pool_f = nn.Identity()
            self.pool_t = nn.Identity()

    def forward(
        self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Computes ``(h_c, g_f, g_t)`` from the block input ``x``."""
        n_freq, n_time = x.shape[2], x.shape[3]
        profile_f = x.mean(dim=3, keepdim=True)
        profile_t = x.mean(dim=2, keepdim=True).transpose(2, 3)
        joint = torch.cat([profile_f, profile_t], dim=2)
        joint = self.joint_act(self.joint_norm(self.joint_conv(joint)))
        h_c = joint.mean(dim=(2, 3))
        h_f, h_t = joint.split([n_freq, n_time], dim=2)
        g_f = self.conv_f(self.pool_f(h_f))
        g_t = self.conv_t(self.pool_t(h_t.transpose(2, 3)))
        return h_c, g_f, g_t


class _DyBlock(nn.Module):
    """Dynamic inverted residual block (EfficientAT's ``DY_Block``).

    context -> [DyConv 1x1 -> BN -> static act] -> DyConv depthwise -> BN
    -> DyReLU-B -> coordinate attention -> DyConv 1x1 -> BN (+ residual).
    The expansion stage is absent when ``expanded == in_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        expanded: int,
        out_channels: int,
        activation: str,
        stride: int,
        context_dim: int,
        num_kernels: int,
        dyrelu_pieces: int,
    ):
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        self.context_gen = _ContextGen(
            in_channels, context_dim, expanded, kernel_size, stride
        )
        if expanded != in_channels:
            self.exp_conv = _DynamicConv(
                in_channels, expanded, context_dim, num_kernels=num_kernels
            )
            self.exp_norm = _batch_norm(expanded)
            self.exp_act = _activation(activation)
        else:
            self.exp_conv = None
        self.depth_conv = _DynamicConv(
            expanded,
            expanded,
            context_dim,
            kernel_size=kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=expanded,
            num_kernels=num_kernels,
        )
        self.depth_norm = _batch_norm(expanded)
        self.depth_act = _DyReLUB(expanded, context_dim, dyrelu_pieces)
        self.proj_conv = _DynamicConv(
            expanded, out_channels, context_dim, num_kernels=num_kernels
        )
        self.proj_norm = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """Runs the block on ``x`` ``[batch, C_in, F, T]``."""
        h_c, g_f, g_t = self.context_gen(x)
        y = x
        if self.exp_conv is not None:
            y = self.exp_act(self.exp_norm(self.exp_conv(y, h_c, temperature)))
        y = self.depth_norm(self.depth_conv(y, h_c, temperature))
        y = self.depth_act(y, h_c)
        y = y * torch.sigmoid(g_f) * torch.sigmoid(g_t)
        y = self.proj_norm(self.proj_conv(y, h_c, temperature))
        if self.use_residual:
            y = y + x
        return y


class DyMN(nn.Module):
    """EfficientAT's dynamic MobileNet (DyMN) audio tagger.

    Parameter and buffer names equal those of EfficientAT's released state
    dicts (default ``use_dy_blocks="all"`` variant), so ``dymn04/10/20``
    checkpoints load with ``load_state_dict(sd)`` (strict) when
    ``width_mult`` is 0.4 / 1.0 / 2.0 and ``num_classes`` matches. Use
    :func:`load_dymn` to load a checkpoint by name.

    The kernel-attention temperature is not part of the state dict: set it
    with the ``temperature`` argument (1.0 for AudioSet weights, 30.0 for
    ImageNet weights or when training from scratch), the ``temperature``
    property, or :meth:`update_temperature` once per epoch.

    The forward pass has no padding mask: the global pooling and the
    per-block context vectors include padded frames, so use fixed-length
    clips. Forward never changes Python-side state.

    Arguments
    ---------
    num_classes : int
        Number of output logits (527 for AudioSet).
    width_mult : float
        Channel width multiplier: 0.4 (dymn04), 1.0 (dymn10), 2.0 (dymn20).
    strides : Sequence[int]
        Strides of the four down-sampling blocks (1, 3, 6 and 12 in
        zero-based order, plus the fixed stride-2 input conv). They do not
        change any weight shape, e.g. ``(2, 2, 2, 1)`` keeps more time
        resolution and still loads the released weights.
    temperature : float
        Softmax temperature of the dynamic-convolution kernel attention.
    num_kernels : int
        Number of kernels K mixed by each dynamic convolution.
    context_ratio : int
        Context size H of a block is ``expanded / context_ratio``, rounded
        and clipped to ``[min_context, max_context] * width_mult``.
    min_context : int
        Lower bound of H before width scaling.
    max_context : int
        Upper bound of H before width scaling.
    dyrelu_pieces : int
        Number of linear pieces M of each DyReLU-B.
    dropout : float
        Dropout probability in the classifier MLP.

    Example
    -------
    >>> model = DyMN(num_classes=10, width_mult=0.4).eval()
    >>> mel = torch.randn(2, 1, 128, 64)
    >>> model(mel).shape
    torch.Size([2, 10])
    >>> model.forward_embedding(mel).shape
    torch.Size([2, 384])
    >>> model.update_temperature(epoch=3)
    27.0
    """

    def __init__(
        self,
        # Output
        num_classes: int = 527,
        # Size
        width_mult: float = 1.0,
        strides: Sequence[int] = (2, 2, 2, 2),
        # Dynamic convolution
        temperature: float = 1.0,
        num_kernels: int = 4,
        # Context
        context_ratio: int = 4,
        min_context: int = 32,
        max_context: int = 128,
        # Dynamic ReLU
        dyrelu_pieces: int = 2,
        # Classifier
        dropout: float = 0.2,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        strides = tuple(int(s) for s in strides)
        if len(strides) != 4 or min(strides) < 1:
            raise ValueError(
                f"strides must be 4 integers >= 1, got {tuple(strides)}"
            )
        if num_kernels < 1:
            raise ValueError(f"num_kernels must be >= 1, got {num_kernels}")
        if dyrelu_pieces < 1:
            raise ValueError(f"dyrelu_pieces must be >= 1, got {dyrelu_pieces}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self._check_temperature(temperature)
        self._temperature = float(temperature)
        self.num_classes = num_classes
        self.width_mult = width_mult
        self.strides = strides

        def scale(channels: int) -> int:
            return make_divisible(channels * width_mult)

        min_h = scale(min_context)
        max_h = scale(max_context)
        first_channels = scale(_BLOCK_TABLE[0][0])
        self.in_c = nn.Sequential(
            nn.Conv2d(1, first_channels, 3, stride=2, padding=1, bias=False),
            _batch_norm(first_channels),
            nn.Hardswish(),
        )
        self.layers = nn.ModuleList()
        for c_in, kernel, c_exp, c_out, act, stride_index in _BLOCK_TABLE:
            c_exp = scale(c_exp)
            context_dim = min(max(make_divisible(c_exp // context_ratio), min_h), max_h)
            self.layers.append(
                _DyBlock(
                    in_channels=scale(c_in),
                    kernel_size=kernel,
                    expanded=c_exp,
                    out_channels=scale(c_out),
                    activation=act,
                    stride=1 if stride_index is None else strides[stride_index],
                    context_dim=context_dim,
                    num_kernels=num_kernels,
                    dyrelu_pieces=dyrelu_pieces,
                )
            )
        last_block_channels = scale(_BLOCK_TABLE[-1][3])
        self.embedding_dim = 6 * last_block_channels
        self.out_c = nn.Sequential(
            nn.Conv2d(last_block_channels, self.embedding_dim, 1, bias=False),
            _batch_norm(self.embedding_dim),
            nn.Hardswish(),
        )
        hidden = make_divisible(1280 * width_mult)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(self.embedding_dim, hidden),
            nn.Hardswish(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    @staticmethod
    def _check_temperature(value: float):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(
                f"temperature must be a finite number > 0, got {value!r}"
            )

    @property
    def temperature(self) -> float:
        """Softmax temperature of the kernel attention (a float > 0)."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float):
        self._check_temperature(value)
        self._temperature = float(value)

    def update_temperature(
        self, epoch: int, max_temperature: float = 30.0, min_temperature: float = 1.0
    ) -> float:
        """Sets the temperature for ``epoch`` with :func:`temperature_schedule`.

        Call this at the start of each epoch when training from scratch (or
        from ImageNet weights). Pretrained AudioSet weights use a constant
        temperature of 1.0 and need no schedule.

        Arguments
        ---------
        epoch : int
            Zero-based epoch index (pass ``epoch - 1`` for SpeechBrain's
            one-based ``EpochCounter``).
        max_temperature : float
            Temperature at epoch 0.
        min_temperature : float
            Final temperature.

        Returns
        -------
        float
            The new temperature, ``max(max_temperature - epoch,
            min_temperature)``.

        Example
        -------
        >>> model = DyMN(width_mult=0.4)
        >>> model.update_temperature(0), model.update_temperature(40)
        (30.0, 1.0)
        """
        self.temperature = temperature_schedule(epoch, max_temperature, min_temperature)
        return self._temperature

    def _check_input(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                "DyMN expects log-mel input of shape [batch, 1, n_mels, time], "
                f"got {tuple(x.shape)}"
            )

    def forward_intermediates(self, x: torch.Tensor) -> List[torch.Tensor]:
        """All 17 feature maps: the input conv, the 15 blocks and ``out_c``.

        Arguments
        ---------
        x : torch.Tensor
            Log-mel input ``[batch, 1, n_mels, time]``.

        Returns
        -------
        list of torch.Tensor
            ``[in_c, layers.0, ..., layers.14, out_c]`` outputs, each
            ``[batch, channels, freq, time]``.

        Example
        -------
        >>> model = DyMN(width_mult=0.4).eval()
        >>> maps = model.forward_intermediates(torch.randn(1, 1, 128, 100))
        >>> len(maps), maps[0].shape, maps[-1].shape
        (17, torch.Size([1, 8, 64, 50]), torch.Size([1, 384, 4, 4]))
        """
        self._check_input(x)
        maps = [self.in_c(x)]
        for layer in self.layers:
            maps.append(layer(maps[-1], self._temperature))
        maps.append(self.out_c(maps[-1]))
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final feature map (the ``out_c`` output).

        Arguments
        ---------
        x : torch.Tensor
            Log-mel input ``[batch, 1, n_mels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, embedding_dim, n_mels / 32, time / 32]`` (rounded up).

        Example
        -------
        >>> model = DyMN(width_mult=0.4).eval()
        >>> model.forward_features(torch.randn(1, 1, 128, 500)).shape
        torch.Size([1, 384, 4, 16])
        """
        self._check_input(x)
        x = self.in_c(x)
        for layer in self.layers:
            x = layer(x, self._temperature)
        return self.out_c(x)

    def forward_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding: the global average of :meth:`forward_features`.

        This is the second output of EfficientAT's ``forward``. Feed it to
        :meth:`forward_head` to get the logits without a second pass.

        Arguments
        ---------
        x : torch.Tensor
            Log-mel input ``[batch, 1, n_mels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, embedding_dim]`` (384 / 960 / 1920 for width 0.4 / 1.0
            / 2.0).

        Example
        -------
        >>> model = DyMN(width_mult=0.4).eval()
        >>> emb = model.forward_embedding(torch.randn(3, 1, 128, 64))
        >>> emb.shape, model.forward_head(emb).shape
        (torch.Size([3, 384]), torch.Size([3, 527]))
        """
        return self.forward_features(x).mean(dim=(2, 3))

    def forward_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Classifier MLP on a pooled embedding.

        Arguments
        ---------
        embedding : torch.Tensor
            ``[batch, embedding_dim]`` from :meth:`forward_embedding`.

        Returns
        -------
        torch.Tensor
            Logits ``[batch, num_classes]``.

        Example
        -------
        >>> model = DyMN(num_classes=5, width_mult=0.4).eval()
        >>> model.forward_head(torch.randn(2, 384)).shape
        torch.Size([2, 5])
        """
        if embedding.dim() != 2 or embedding.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embedding must have shape [batch, {self.embedding_dim}], "
                f"got {tuple(embedding.shape)}"
            )
        for module in list(self.classifier)[2:]:
            embedding = module(embedding)
        return embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of log-mel spectrograms.

        Unlike EfficientAT (which returns ``(logits, embedding)`` and
        squeezes), this returns the logits only, always 2-D; use
        :meth:`forward_embedding` and :meth:`forward_head` for both.

        Arguments
        ---------
        x : torch.Tensor
            Log-mel input ``[batch, 1, n_mels, time]``, e.g. from
            :class:`DyMNFrontEnd`.

        Returns
        -------
        torch.Tensor
            Logits ``[batch, num_classes]``.

        Example
        -------
        >>> model = DyMN(num_classes=1, width_mult=0.4).eval()
        >>> model(torch.randn(3, 1, 128, 32)).shape
        torch.Size([3, 1])
        """
        return self.forward_head(self.forward_embedding(x))


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """Reads a plain state dict with ``torch.load(weights_only=True)``.

    Arguments
    ---------
    path : str
        A ``.pt`` file holding a ``{name: tensor}`` dict.

    Returns
    -------
    dict
        The state dict, on the CPU.

    Raises
    ------
    ValueError
        If the file holds pickled objects other than tensors and plain
        containers, or is not a ``{str: tensor}`` dict.

    Example
    -------
    >>> path = getfixture("tmp_path") / "sd.pt"
    >>> torch.save({"w": torch.zeros(2)}, path)
    >>> read_checkpoint(path)
    {'w': tensor([0., 0.])}
    """
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as err:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} could not be read as a plain state "
            "dict of tensors with torch.load(weights_only=True); it may hold "
            f"pickled objects, which are refused: {err}"
        ) from err
    if not isinstance(state_dict, dict):
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} must hold a dict of tensors, "
            f"got {type(state_dict).__name__}"
        )
    bad = [
        f"{key!r} ({type(value).__name__})"
        for key, value in state_dict.items()
        if not (isinstance(key, str) and isinstance(value, torch.Tensor))
    ]
    if bad:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} must map names to tensors; "
            f"non-tensor entries: {', '.join(bad[:10])}"
            + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        )
    return state_dict


def _format_keys(keys: List[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... and {len(keys) - limit} more" if len(keys) > limit else "")


def load_dymn_state_dict(
    model: DyMN, state_dict: Dict[str, torch.Tensor], allow_new_head: bool = False
) -> DyMN:
    """Loads an EfficientAT DyMN state dict strictly, with a clear error.

    Arguments
    ---------
    model : DyMN
        The model to load into (in place).
    state_dict : dict
        EfficientAT-style state dict (no ``module.`` prefix).
    allow_new_head : bool
        If True and the checkpoint's output layer ``classifier.5`` has a
        different number of classes than ``model``, the checkpoint's
        ``classifier.5.{weight,bias}`` are dropped (logged) and the model
        keeps its freshly initialised head. Every other tensor must still
        match exactly.

    Returns
    -------
    DyMN
        ``model``, for chaining.

    Raises
    ------
    RuntimeError
        Naming the missing keys, unexpected keys and mis-shaped tensors.

    Example
    -------
    >>> source = DyMN(num_classes=527, width_mult=0.4)
    >>> target = DyMN(num_classes=50, width_mult=0.4)
    >>> model = load_dymn_state_dict(target, source.state_dict(), allow_new_head=True)
    >>> model.classifier[5].out_features
    50
    """
    expected = model.state_dict()
    state_dict = dict(state_dict)
    dropped_head = False
    head_key = "classifier.5.weight"
    if (
        allow_new_head
        and head_key in state_dict
        and state_dict[head_key].dim() == 2
        and state_dict[head_key].shape[1] == expected[head_key].shape[1]
        and state_dict[head_key].shape[0] != expected[head_key].shape[0]
        and state_dict.get("classifier.5.bias", torch.empty(0)).shape
        == (state_dict[head_key].shape[0],)
    ):
        logger.info(
            "Dropping the checkpoint's classifier head (classifier.5, %d classes); "
            "the model keeps a freshly initialised %d-class head.",
            state_dict[head_key].shape[0],
            expected[head_key].shape[0],
        )
        del state_dict[head_key], state_dict["classifier.5.bias"]
        dropped_head = True

    allowed_missing = {"classifier.5.weight", "classifier.5.bias"} if dropped_head else set()
    missing = [k for k in expected if k not in state_dict and k not in allowed_missing]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mis_shaped:
        problems = []
        if missing:
            problems.append(f"missing keys ({len(missing)}): {_format_keys(missing)}")
        if unexpected:
            problems.append(
                f"unexpected keys ({len(unexpected)}): {_format_keys(unexpected)}"
            )
        if mis_shaped:
            problems.append(
                f"shape mismatches ({len(mis_shaped)}): {_format_keys(mis_shaped)}"
            )
        raise RuntimeError(
            f"DyMN checkpoint does not match the model (width_mult="
            f"{model.width_mult}, num_classes={model.num_classes}): "
            + "; ".join(problems)
        )
    model.load_state_dict(state_dict, strict=not dropped_head)
    return model


def load_dymn(
    name: str,
    checkpoint_dir: str,
    num_classes: Optional[int] = None,
    download: bool = False,
    temperature: Optional[float] = None,
    strides: Sequence[int] = (2, 2, 2, 2),
    dropout: float = 0.2,
) -> DyMN:
    """Builds a :class:`DyMN` and loads EfficientAT's released weights by name.

    The file ``checkpoint_dir/<DYMN_CHECKPOINTS[name]>`` is read with
    ``torch.load(weights_only=True)``. If it is missing and ``download`` is
    True, it is first fetched from ``DYMN_BASE_URL``.

    Arguments
    ---------
    name : str
        A key of ``DYMN_CHECKPOINTS`` (e.g. ``"dymn10_as"``) or the stem of
        one of its files (e.g. ``"dymn20_as_mAP_489"``).
    checkpoint_dir : str
        Folder holding (or receiving) the ``.pt`` files.
    num_classes : int, optional
        Output classes; None keeps the checkpoint's head. Any other value
        that differs from the checkpoint drops the released output layer and
        keeps a freshly initialised one (everything else loads strictly).
    download : bool
        Whether to download a missing file from EfficientAT's release.
    temperature : float, optional
        Kernel-attention temperature; None uses the value the weights were
        trained with (30.0 for ``_im``, 1.0 for ``_as`` checkpoints).
    strides : Sequence[int]
        Strides of the four down-sampling blocks (see :class:`DyMN`).
    dropout : float
        Classifier dropout.

    Returns
    -------
    DyMN
        The model with loaded weights, in training mode like any new module.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> torch.save(DyMN(width_mult=0.4).state_dict(), folder / "dymn04_as.pt")
    >>> model = load_dymn("dymn04_as", folder, num_classes=10)
    >>> model.classifier[5].out_features, model.temperature
    (10, 1.0)
    """
    # Registry names take precedence over file stems ("dymn20_as" is the
    # mAP-493 file, not "dymn20_as.pt").
    lookup = {os.path.splitext(f)[0]: f for f in DYMN_CHECKPOINTS.values()}
    lookup.update(DYMN_CHECKPOINTS)
    if name not in lookup:
        raise ValueError(
            f"name must be one of {sorted(lookup)}, got {name!r}"
        )
    filename = lookup[name]
    width_mult = _NAME_TO_WIDTH[filename[:6]]
    if temperature is None:
        temperature = 30.0 if "_im" in filename else 1.0

    path = os.path.join(os.fspath(checkpoint_dir), filename)
    if not os.path.isfile(path):
        url = DYMN_BASE_URL + filename
        if not download:
            raise FileNotFoundError(
                f"DyMN checkpoint {path!r} not found; place {url} there or "
                "call load_dymn(..., download=True)"
            )
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        logger.info("Downloading %s to %s", url, path)
        torch.hub.download_url_to_file(url, path, progress=False)

    state_dict = read_checkpoint(path)
    head = state_dict.get("classifier.5.weight")
    if num_classes is None:
        if head is None or head.dim() != 2:
            raise RuntimeError(
                f"DyMN checkpoint {path!r} has no 2-D 'classifier.5.weight'; "
                "cannot infer num_classes, pass it explicitly"
            )
        num_classes = int(head.shape[0])
    model = DyMN(
        num_classes=num_classes,
        width_mult=width_mult,
        strides=strides,
        temperature=temperature,
        dropout=dropout,
    )
    load_dymn_state_dict(model, state_dict, allow_new_head=True)
    logger.info("Loaded DyMN weights %s (temperature %s)", path, temperature)
    return model


def kaldi_mel_banks(
    n_mels: int,
    n_fft: int,
    sample_rate: float,
    fmin: float,
    fmax: float,
) -> torch.Tensor:
    """Kaldi-style triangular mel filterbank, as EfficientAT uses it.

    Mel scale ``m(f) = 1127 ln(1 + f / 700)``; ``n_mels + 2`` edges equally
    spaced in mel between ``fmin`` and ``fmax``; filter ``i`` rises from
    edge ``i`` to ``i + 1`` and falls to ``i + 2`` linearly *in mel*,
    evaluated at the FFT bin frequencies ``k * sample_rate / n_fft`` for
    ``k < n_fft / 2``. Filters are not area-normalised (the triangle peaks
    at 1), and a zero column is appended for the Nyquist bin.

    Arguments
    ---------
    n_mels : int
        Number of mel filters.
    n_fft : int
        FFT size (even).
    sample_rate : float
        Sampling rate in Hz.
    fmin : float
        Lower edge of the first filter in Hz.
    fmax : float
        Upper edge of the last filter in Hz (at most ``sample_rate / 2``).

    Returns
    -------
    torch.Tensor
        ``[n_mels, n_fft // 2 + 1]`` float32 weights.

    Example
    -------
    >>> banks = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0)
    >>> banks.shape, bool(banks[:, -1].eq(0).all())
    (torch.Size([128, 513]), True)
    """
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(
            "need 0 <= fmin < fmax <= sample_rate / 2, got "
            f"fmin={fmin}, fmax={fmax}, sample_rate={sample_rate}"
        )

    # Same float32 arithmetic as Kaldi/torchaudio, so that the weights agree
    # bit for bit with the filterbank EfficientAT was trained with.
    mel_low = 1127.0 * math.log(1.0 + fmin / 700.0)
    mel_high = 1127.0 * math.log(1.0 + fmax / 700.0)
    delta = (mel_high - mel_low) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float32).unsqueeze(1)
    left = mel_low + index * delta
    centre = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    bin_freqs = sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float32)
    bin_mel = 1127.0 * (1.0 + bin_freqs / 700.0).log()
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return F.pad(banks, (0, 1))


class DyMNFrontEnd(nn.Module):
    """EfficientAT's log-mel front-end (``AugmentMelSTFT``) for DyMN.

    Steps: optional band-limited resampling to ``sample_rate``; pre-emphasis
    ``y[n] = x[n+1] - 0.97 x[n]`` (one sample shorter); centred STFT with
    reflect padding and a symmetric Hann window of ``win_length`` zero-padded
    to ``n_fft``; power spectrum; Kaldi mel filterbank
    (:func:`kaldi_mel_banks`, computed in fp32); ``ln(x + 1e-5)``; in
    training only, SpecAugment masks; ``(x + 4.5) / 5``.

    In eval mode the band is ``[fmin, fmax]`` exactly and the output is
    deterministic. In training mode the band edges are
    jittered once per batch, ``fmin + U{0..fmin_aug_range-1}`` and
    ``fmax + fmax_aug_range // 2 - U{0..fmax_aug_range-1}``, and iid
    frequency/time masks of widths below ``freqm``/``timem`` are applied per
    clip (EfficientAT's training scripts set ``freqm = timem = 0``).

    Each clip's features depend only on its own samples (as given by
    ``wav_lens``): frames past a clip's end are set to the digital-silence
    value ``(ln(1e-5) + 4.5) / 5``.

    Arguments
    ---------
    sample_rate : int
        Rate the features are computed at (DyMN's weights expect 32000).
    orig_sample_rate : int
        Rate of the input waveforms; if it differs from ``sample_rate`` the
        input goes through ``torchaudio.transforms.Resample`` (Kaiser-windowed
        sinc, band-limited) first. With 16 kHz input the mel bands above
        about 7.6 kHz (the top ~25 of 128) stay near the silence value.
    n_fft : int
        FFT size.
    win_length : int
        Hann window length in samples.
    hop_length : int
        Frame shift in samples.
    preemphasis : float
        Pre-emphasis coefficient.
    n_mels : int
        Number of mel bands.
    fmin : float
        Lowest mel edge in Hz.
    fmax : float, optional
        Highest mel edge in Hz; None means ``sample_rate / 2 -
        fmax_aug_range / 2`` (15 kHz at 32 kHz).
    fmin_aug_range : int
        Training-time jitter range of ``fmin`` in Hz (0 disables).
    fmax_aug_range : int
        Training-time jitter range of ``fmax`` in Hz (0 disables).
    freqm : int
        Maximum frequency-mask width in bins during training (0 disables).
    timem : int
        Maximum time-mask width in frames during training (0 disables).
    resample_lowpass_width : int
        Zero crossings on each side of the resampling filter.
    resample_rolloff : float
        Resampler cut-off as a fraction of the lower Nyquist frequency.
    resample_beta : float
        Kaiser window shape of the resampling filter. The signature's values
        are librosa's "kaiser_best"; torchaudio's own Resample defaults
        (width 6, rolloff 0.99, Hann) leave images only about 11 dB down
        near the band edge, whereas these push them below the log-mel floor.

    Example
    -------
    >>> frontend = DyMNFrontEnd().eval()
    >>> frontend(torch.randn(2, 32000)).shape
    torch.Size([2, 1, 128, 100])
    >>> frontend_16k = DyMNFrontEnd(orig_sample_rate=16000).eval()
    >>> frontend_16k(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 1, 128, 100])
    """

    def __init__(
        self,
        # Sampling rates
        sample_rate: int = 32000,
        orig_sample_rate: int = 32000,
        # STFT
        n_fft: int = 1024,
        win_length: int = 800,
        hop_length: int = 320,
        preemphasis: float = 0.97,
        # Mel filterbank
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: Optional[float] = None,
        fmin_aug_range: int = 10,
        fmax_aug_range: int = 2000,
        # Training-time masking
        freqm: int = 0,
        timem: int = 0,
        # Resampling (Kaiser-windowed sinc, librosa's "kaiser_best" settings)
        resample_lowpass_width: int = 64,
        resample_rolloff: float = 0.9475937167399596,
        resample_beta: float = 14.769656459379492,
    ):
        super().__init__()
        for arg, value in (
            ("sample_rate", sample_rate),
            ("orig_sample_rate", orig_sample_rate),
            ("n_fft", n_fft),
            ("win_length", win_length),
            ("hop_length", hop_length),
            ("n_mels", n_mels),
            ("resample_lowpass_width", resample_lowpass_width),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be an integer >= 1, got {value}")
        if not 0 < resample_rolloff <= 1:
            raise ValueError(
                f"resample_rolloff must be in (0, 1], got {resample_rolloff}"
            )
        if win_length > n_fft:
            raise ValueError(
                f"win_length must be <= n_fft={n_fft}, got {win_length}"
            )
        for arg, value in (
            ("fmin_aug_range", fmin_aug_range),
            ("fmax_aug_range", fmax_aug_range),
            ("freqm", freqm),
            ("timem", timem),
        ):
            if int(value) != value or value < 0:
                raise ValueError(f"{arg} must be an integer >= 0, got {value}")
        if fmax is None:
            fmax = sample_rate / 2 - fmax_aug_range / 2
        if fmin < 0 or fmin + max(fmin_aug_range - 1, 0) >= fmax - fmax_aug_range / 2:
            raise ValueError(
                f"fmin must be >= 0 and below fmax even after jitter, got "
                f"fmin={fmin}, fmax={fmax}"
            )
        if fmax + fmax_aug_range // 2 > sample_rate / 2:
            raise ValueError(
                "fmax + fmax_aug_range // 2 must be <= sample_rate / 2 = "
                f"{sample_rate / 2}, got fmax={fmax}, fmax_aug_range={fmax_aug_range}"
            )

        self.sample_rate = int(sample_rate)
        self.orig_sample_rate = int(orig_sample_rate)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.fmin_aug_range = int(fmin_aug_range)
        self.fmax_aug_range = int(fmax_aug_range)
        self.freqm = int(freqm)
        self.timem = int(timem)

        if self.orig_sample_rate != self.sample_rate:
            self.resampler = torchaudio.transforms.Resample(
                self.orig_sample_rate,
                self.sample_rate,
                resampling_method="sinc_interp_kaiser",
                lowpass_filter_width=resample_lowpass_width,
                rolloff=resample_rolloff,
                beta=resample_beta,
            )
            # The sinc kernel is derived from the rates: keep it out of the
            # state dict so that checkpoints do not depend on the input rate.
            kernel = self.resampler.kernel
            delattr(self.resampler, "kernel")
            self.resampler.register_buffer("kernel", kernel, persistent=False)
        else:
            self.resampler = None
        # iid masks: one random band per clip, width uniform in [0, freqm).
        self.freq_masking = torchaudio.transforms.FrequencyMasking(
            self.freqm, iid_masks=True
        )
        self.time_masking = torchaudio.transforms.TimeMasking(self.timem, iid_masks=True)

        self.register_buffer(
            "window",
            torch.hann_window(self.win_length, periodic=False),
            persistent=False,
        )
        self.register_buffer(
            "preemphasis_kernel",
            torch.tensor([[[-float(preemphasis), 1.0]]]),
            persistent=False,
        )
        self.register_buffer(
            "mel_banks",
            kaldi_mel_banks(n_mels, n_fft, sample_rate, self.fmin, self.fmax),
            persistent=False,
        )

    @property
    def silence_value(self) -> float:
        """Output value for digital silence and padding, about -1.40."""
        return (math.log(_LOG_OFFSET) + _NORM_SHIFT) / _NORM_SCALE

    def resampled_length(self, num_samples: int) -> int:
        """Length in samples after resampling to ``sample_rate``.

        Arguments
        ---------
        num_samples : int
            Input length at ``orig_sample_rate``.

        Returns
        -------
        int
            ``ceil(num_samples * sample_rate / orig_sample_rate)``, as
            torchaudio's ``Resample`` produces.

        Example
        -------
        >>> DyMNFrontEnd(orig_sample_rate=16000).resampled_length(16001)
        32002
        """
        if self.resampler is None:
            return num_samples
        gcd = math.gcd(self.orig_sample_rate, self.sample_rate)
        new, orig = self.sample_rate // gcd, self.orig_sample_rate // gcd
        return -(-new * num_samples // orig)

    def num_frames(self, num_samples: int) -> int:
        """Number of output frames for an input of ``num_samples`` samples.

        Arguments
        ---------
        num_samples : int
            Input length at ``orig_sample_rate``.

        Returns
        -------
        int
            ``1 + (L - 1) // hop_length`` with ``L`` the length at
            ``sample_rate`` (pre-emphasis removes one sample).

        Example
        -------
        >>> DyMNFrontEnd().num_frames(320000)
        1000
        """
        return 1 + (self.resampled_length(num_samples) - 1) // self.hop_length

    def _batch_mel_banks(self) -> torch.Tensor:
        if not self.training or (self.fmin_aug_range <= 1 and self.fmax_aug_range <= 1):
            return self.mel_banks
        fmin = self.fmin + int(torch.randint(max(self.fmin_aug_range, 1), ()))
        fmax = (
            self.fmax
            + self.fmax_aug_range // 2
            - int(torch.randint(max(self.fmax_aug_range, 1), ()))
        )
        banks = kaldi_mel_banks(self.n_mels, self.n_fft, self.sample_rate, fmin, fmax)
        return banks.to(self.mel_banks.device)

    def _log_mel(self, wavs: torch.Tensor, banks: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-mel ``[batch, n_mels, frames]`` of equal-length clips."""
        if self.resampler is not None:
            wavs = self.resampler(wavs)
        min_samples = self.n_fft // 2 + 2
        if wavs.shape[1] < min_samples:
            raise ValueError(
                f"clips must have at least {min_samples} samples at "
                f"{self.sample_rate} Hz, got {wavs.shape[1]}"
            )
        wavs = F.conv1d(wavs.unsqueeze(1), self.preemphasis_kernel).squeeze(1)
        spec = torch.stft(
            wavs,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        return torch.log(torch.matmul(banks, power) + _LOG_OFFSET)

    @fwd_default_precision(cast_inputs=torch.float32)
    def forward(
        self, wavs: torch.Tensor, wav_lens: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Computes normalised log-mel features.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[batch, samples]`` at ``orig_sample_rate``, raw
            amplitude (no peak normalisation).
        wav_lens : torch.Tensor, optional
            Relative lengths ``[batch]`` in (0, 1] (SpeechBrain convention);
            None means all clips fill the tensor.

        Returns
        -------
        torch.Tensor
            ``[batch, 1, n_mels, num_frames(samples)]`` in fp32, even under
            autocast.
        """
        if wavs.dim() != 2:
            raise ValueError(
                f"wavs must have shape [batch, samples], got {tuple(wavs.shape)}"
            )
        batch, num_samples = wavs.shape
        banks = self._batch_mel_banks()
        num_frames = self.num_frames(num_samples)
        if wav_lens is None:
            lengths = torch.full((batch,), num_samples, dtype=torch.long)
        else:
            if wav_lens.shape != (batch,):
                raise ValueError(
                    f"wav_lens must have shape [{batch}], got {tuple(wav_lens.shape)}"
                )
            if bool((wav_lens <= 0).any()) or bool((wav_lens > 1 + 1e-6).any()):
                raise ValueError(
                    f"wav_lens must be in (0, 1], got {wav_lens.tolist()}"
                )
            lengths = torch.round(wav_lens.detach().cpu().double() * num_samples)
            lengths = lengths.long().clamp(1, num_samples)

        if bool((lengths == num_samples).all()):
            feats = self._log_mel(wavs, banks)
        else:
            feats = wavs.new_full((batch, self.n_mels, num_frames), math.log(_LOG_OFFSET))
            for length in torch.unique(lengths).tolist():
                index = torch.nonzero(lengths == length).flatten().to(wavs.device)
                clip_feats = self._log_mel(wavs[index, :length], banks)
                feats[index, :, : clip_feats.shape[-1]] = clip_feats

        if self.training:
            feats = self.freq_masking(feats)
            feats = self.time_masking(feats)
        feats = (feats + _NORM_SHIFT) / _NORM_SCALE
        return feats.unsqueeze(1)
