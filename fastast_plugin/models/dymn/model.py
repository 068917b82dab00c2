"""EfficientAT's dynamic MobileNet (DyMN) audio tagger.

DyMN (Schmid et al., "Dynamic Convolutional Neural Networks as Efficient
Pre-trained Audio Models", IEEE/ACM TASLP 2024) is a MobileNetV3-style CNN
whose blocks use dynamic convolutions, dynamic ReLU and coordinate attention,
all driven by a per-block context vector. This module re-implements it
(EfficientAT's ``models/dymn/model.py`` and ``models/dymn/dy_block.py``,
https://github.com/fschmid56/EfficientAT) with the parameter and buffer
names of EfficientAT's released state dicts, so that ``dymn04_as.pt``,
``dymn10_as.pt``, ``dymn20_as_mAP_493.pt`` and the ImageNet variants load
strictly (``fastast_plugin.models.dymn.weights``). Its input is the log-mel
spectrogram of ``fastast_plugin.models.dymn.frontend.DyMNFrontEnd``.

Authors
 * fastast developers 2026
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DyMN"]

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


def _make_divisible(value: float, divisor: int = 8) -> int:
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
    >>> _make_divisible(16 * 0.4), _make_divisible(1280 * 0.4), _make_divisible(50)
    (8, 512, 48)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _temperature_schedule(
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
    >>> [_temperature_schedule(e) for e in (0, 1, 28, 29, 100)]
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
    def kernel_shape(self) -> tuple[int, int, int, int]:
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

    def forward(self, x: torch.Tensor, context: torch.Tensor, temperature: float) -> torch.Tensor:
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
        self.coef_net = nn.Sequential(nn.Linear(context_dim, 2 * num_pieces * channels))
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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
        self.context_gen = _ContextGen(in_channels, context_dim, expanded, kernel_size, stride)
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
        self.proj_conv = _DynamicConv(expanded, out_channels, context_dim, num_kernels=num_kernels)
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
    ``fastast_plugin.models.dymn.weights.load_dymn`` to load a checkpoint by name.

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
        for arg, value in (
            ("num_classes", num_classes),
            ("num_kernels", num_kernels),
            ("dyrelu_pieces", dyrelu_pieces),
        ):
            if value < 1:
                raise ValueError(f"{arg} must be >= 1, got {value}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        strides = tuple(int(s) for s in strides)
        if len(strides) != 4 or min(strides) < 1:
            raise ValueError(f"strides must be 4 integers >= 1, got {strides}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self._check_temperature(temperature)
        self._temperature = float(temperature)
        self.num_classes = num_classes
        self.width_mult = width_mult
        self.strides = strides

        def scale(channels: int) -> int:
            return _make_divisible(channels * width_mult)

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
            context_dim = min(max(_make_divisible(c_exp // context_ratio), min_h), max_h)
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
        hidden = _make_divisible(1280 * width_mult)
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
            raise ValueError(f"temperature must be a finite number > 0, got {value!r}")

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
        """Sets the temperature for ``epoch`` with :func:`_temperature_schedule`.

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
        self.temperature = _temperature_schedule(epoch, max_temperature, min_temperature)
        return self._temperature

    def _check_input(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                "DyMN expects log-mel input of shape [batch, 1, n_mels, time], "
                f"got {tuple(x.shape)}"
            )

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
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
            Log-mel input ``[batch, 1, n_mels, time]``; the input conv and
            the four strided blocks each halve both axes (with the default
            ``strides``).

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
            Log-mel input ``[batch, 1, n_mels, time]``. The average includes
            padded frames (there is no padding mask).

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
            ``fastast_plugin.models.dymn.frontend.DyMNFrontEnd``.

        Returns
        -------
        torch.Tensor
            Logits ``[batch, num_classes]``, as ``forward_head`` gives them.

        Example
        -------
        >>> DyMN(num_classes=1, width_mult=0.4).eval()(torch.randn(3, 1, 128, 32)).shape
        torch.Size([3, 1])
        """
        return self.forward_head(self.forward_embedding(x))
