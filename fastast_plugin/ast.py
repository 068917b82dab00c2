"""Audio Spectrogram Transformer encoder with token merging and flexible patches.

Our own modules for AST (Gong et al., 2021): a DeiT/ViT encoder over 16x16
patches of a log-mel spectrogram. Parameter names follow timm's
``VisionTransformer`` so that AST, DeiT and ViT weights load by name. Token
merging (ToMe, Bolya et al., 2023) runs between attention and MLP in every
block when ``r > 0``; with ``r = 0`` the encoder is plain AST. A flexible
encoder (``flexible != "none"``, FlexiAST, Feng et al., 2023) runs at any
patch size chosen with ``set_patch_size``: its one stored kernel is
PI-resized and its one stored positional grid resampled in every forward
(``fastast_plugin.flexi``).

Authors
 * fastast developers 2026
"""

from typing import Literal, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from fastast_plugin.flexi import (
    kernel_matrices,
    patch_grid,
    pi_resize,
    resample_pos_embed,
    to_pair,
)
from fastast_plugin.merge import (
    bipartite_soft_matching,
    keep_ratio_schedule,
    merge_source,
    merge_wavg,
    parse_r,
)

# (embed_dim, depth, num_heads) of the DeiT backbones AST builds on.
MODEL_SIZES = {
    "tiny224": (192, 12, 3),
    "small224": (384, 12, 6),
    "base224": (768, 12, 12),
    "base384": (768, 12, 12),
}
FLEXIBLE_AXES = {"none": (), "both": (0, 1), "freq": (0,), "time": (1,)}


def grid_shape(input_fdim, input_tdim, patch_size=16, fstride=10, tstride=10):
    """Patch grid (frequency rows, time columns) of a spectrogram.

    Arguments
    ---------
    input_fdim : int
        Number of mel bands.
    input_tdim : int
        Number of frames.
    patch_size : int or tuple of int
        Side of a square patch, or ``(freq, time)``.
    fstride : int
        Stride along frequency.
    tstride : int
        Stride along time.

    Returns
    -------
    tuple of int
        ``(f_dim, t_dim)``.

    Example
    -------
    >>> grid_shape(128, 1024), grid_shape(128, 128), grid_shape(128, 1024, 48, 48, 48)
    ((12, 101), (12, 12), (2, 21))
    """
    return patch_grid((input_fdim, input_tdim), patch_size, (fstride, tstride))


class PatchEmbed(nn.Module):
    """Spectrogram to patch tokens with one convolution, at any patch size.

    ``proj`` stores the kernel at its base size. ``set_patch_size`` switches
    to another patch size and stride: the kernel is then PI-resized in every
    forward (the resize matrix is cached, the resized kernel is not, so
    gradients reach the stored kernel at every size) and ``proj.stride``
    holds the current stride. At the base size the convolution is ``proj``
    itself.

    Arguments
    ---------
    embed_dim : int
        Token dimension.
    patch_size : int or tuple of int
        Base kernel: side of a square kernel, or ``(freq, time)``.
    fstride : int
        Base stride along frequency (``< patch_size`` overlaps patches).
    tstride : int
        Base stride along time.

    Example
    -------
    >>> embed = PatchEmbed(192)
    >>> embed(torch.randn(2, 1, 128, 128)).shape
    torch.Size([2, 144, 192])
    >>> embed.set_patch_size((32, 32), (32, 32))
    >>> embed(torch.randn(2, 1, 128, 128)).shape
    torch.Size([2, 16, 192])
    """

    def __init__(self, embed_dim, patch_size=16, fstride=10, tstride=10):
        super().__init__()
        self.proj = nn.Conv2d(
            1, embed_dim, kernel_size=patch_size, stride=(fstride, tstride)
        )
        self.base_patch_size = tuple(self.proj.kernel_size)
        self.base_stride = (fstride, tstride)
        self.patch_size = self.base_patch_size
        self._matrices = None  # PI-resize matrices of the current size, or None

    @property
    def stride(self):
        """Current ``(fstride, tstride)``."""
        return tuple(self.proj.stride)

    def set_patch_size(self, patch_size, stride):
        """Use ``patch_size`` and ``stride`` (both ``(freq, time)``) from now on.

        Arguments
        ---------
        patch_size : tuple of int
            Patch ``(freq, time)``.
        stride : tuple of int
            Stride ``(freq, time)``.
        """
        self.patch_size = to_pair(patch_size)
        self.proj.stride = to_pair(stride, "stride")
        self._matrices = None
        if self.patch_size != self.base_patch_size:
            self._matrices = kernel_matrices(self.proj.weight, self.patch_size)

    def kernel(self):
        """The kernel at the current patch size ``[dim, 1, p_freq, p_time]``."""
        weight = self.proj.weight
        if self.patch_size == self.base_patch_size:
            return weight
        if self._matrices is None or self._matrices[0].device != weight.device:
            self._matrices = kernel_matrices(weight, self.patch_size)
        return pi_resize(weight, self.patch_size, matrices=self._matrices)

    def forward(self, x):
        """Embed ``x`` [batch, 1, freq, time] into [batch, tokens, dim].

        Tokens are frequency-major (index ``f * t_dim + t``), as in AST.
        """
        if self.patch_size == self.base_patch_size:
            x = self.proj(x)
        else:
            x = F.conv2d(x, self.kernel(), self.proj.bias, stride=self.proj.stride)
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection.

    Returns the attention output and ToMe's merge metric, the keys averaged
    over heads. Token sizes, when given, enter as proportional attention:
    ``log(size)`` is added to the attention logits of every key.

    Arguments
    ---------
    dim : int
        Token dimension.
    num_heads : int
        Number of heads.
    qkv_bias : bool
        Whether the qkv projection has a bias.
    fused_attn : bool
        Use ``scaled_dot_product_attention`` (True) or the explicit
        softmax path (False, for tests and debugging).

    Example
    -------
    >>> attn = Attention(64, num_heads=4)
    >>> out, metric = attn(torch.randn(2, 10, 64))
    >>> out.shape, metric.shape
    (torch.Size([2, 10, 64]), torch.Size([2, 10, 16]))
    """

    def __init__(self, dim, num_heads, qkv_bias=True, fused_attn=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})"
            )
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, size=None):
        """Attend over ``x`` [batch, tokens, dim].

        Arguments
        ---------
        x : torch.Tensor
            Tokens ``[batch, tokens, dim]``.
        size : torch.Tensor, optional
            Number of patches each token holds ``[batch, tokens, 1]``;
            enables proportional attention.

        Returns
        -------
        out : torch.Tensor
            ``[batch, tokens, dim]``.
        metric : torch.Tensor
            Keys averaged over heads ``[batch, tokens, head_dim]``.
        """
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = None
        if size is not None:
            bias = size.log().to(q.dtype).reshape(B, 1, 1, N)
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            logits = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                logits = logits + bias
            out = logits.softmax(dim=-1) @ v
        out = self.proj(out.transpose(1, 2).reshape(B, N, C))
        return out, k.mean(1)


class Mlp(nn.Module):
    """Two-layer feed-forward network with GELU.

    Arguments
    ---------
    dim : int
        Token dimension.
    hidden_dim : int
        Hidden dimension.

    Example
    -------
    >>> Mlp(8, 32)(torch.randn(1, 3, 8)).shape
    torch.Size([1, 3, 8])
    """

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        """Apply the MLP to ``x`` [..., dim]."""
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample during training.

    Arguments
    ---------
    drop_prob : float
        Probability of dropping the branch.

    Example
    -------
    >>> DropPath(0.5).eval()(torch.ones(2, 3)).sum().item()
    6.0
    """

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        """Drop ``x`` for random samples and rescale the kept ones."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep


class MergeState(NamedTuple):
    """What token merging tracks through the blocks.

    ``size`` is the number of input patches each token holds
    ``[batch, tokens, 1]`` (None before the first merge); ``source`` maps
    tokens to the input tokens they hold ``[batch, tokens, input_tokens]``
    (None unless source tracing is on).
    """

    size: Optional[torch.Tensor] = None
    source: Optional[torch.Tensor] = None


class Block(nn.Module):
    """Pre-norm transformer block that merges ``r`` tokens after attention.

    Arguments
    ---------
    dim : int
        Token dimension.
    num_heads : int
        Number of attention heads.
    mlp_ratio : float
        Hidden size of the MLP relative to ``dim``.
    qkv_bias : bool
        Whether the qkv projection has a bias.
    drop_path : float
        Stochastic depth probability.
    layer_norm_eps : float
        Epsilon of the LayerNorms.
    fused_attn : bool
        Use ``scaled_dot_product_attention``.

    Example
    -------
    >>> block = Block(64, 4)
    >>> x, state = block(torch.randn(2, 12, 64), r=3, num_protected=2)
    >>> x.shape, state.size.shape
    (torch.Size([2, 9, 64]), torch.Size([2, 9, 1]))
    """

    def __init__(
        self,
        dim,
        num_heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path=0.0,
        layer_norm_eps=1e-6,
        fused_attn=True,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x,
        state=MergeState(),
        r=0,
        num_protected=0,
        prop_attn=True,
        trace_source=False,
    ):
        """Attention, then merge ``r`` tokens, then MLP.

        Arguments
        ---------
        x : torch.Tensor
            Tokens ``[batch, tokens, dim]``.
        state : MergeState
            Token sizes and sources from the previous block.
        r : int
            Number of tokens to merge away in this block.
        num_protected : int
            Leading tokens that are never merged (0, 1 = cls, 2 = cls+dist).
        prop_attn : bool
            Weight attention by token size.
        trace_source : bool
            Track which input tokens each token holds.

        Returns
        -------
        x : torch.Tensor
            ``[batch, tokens - r, dim]``.
        state : MergeState
            Updated sizes and sources.
        """
        attn_size = state.size if prop_attn else None
        x_attn, metric = self.attn(self.norm1(x), attn_size)
        x = x + self.drop_path(x_attn)
        if r > 0:
            merge, _ = bipartite_soft_matching(
                metric,
                r,
                class_token=num_protected >= 1,
                distill_token=num_protected >= 2,
            )
            source = state.source
            if trace_source:
                source = merge_source(merge, x, source)
            x, size = merge_wavg(merge, x, state.size)
            state = MergeState(size, source)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, state


class ASTEncoder(nn.Module):
    """AST encoder: patch embedding, prefix tokens, blocks, norm, pooling.

    Follows SpeechBrain's encoder contract ``forward(feats, lengths) ->
    [batch, 1, dim]`` so it drops into any ``embedding_model`` slot.

    Arguments
    ---------
    model_size : str
        ``tiny224``, ``small224``, ``base224`` or ``base384`` (DeiT presets);
        ``embed_dim``, ``depth`` and ``num_heads`` override it.
    embed_dim : int, optional
        Token dimension.
    depth : int, optional
        Number of blocks.
    num_heads : int, optional
        Number of attention heads.
    mlp_ratio : float
        MLP hidden size relative to ``embed_dim``.
    qkv_bias : bool
        Bias in the qkv projections.
    input_fdim : int
        Mel bands of the input.
    input_tdim : int
        Frames of the input.
    patch_size : int or tuple of int
        Side of the square patch kernel (or ``(freq, time)``): the base
        patch size, at which the kernel is stored.
    fstride : int
        Base patch stride along frequency. The positional embedding is
        stored for the grid of the base patch size and strides.
    tstride : int
        Base patch stride along time.
    flexible : str
        Which patch axes ``set_patch_size`` may change (FlexiAST):
        ``"none"`` (a fixed-patch AST), ``"both"``, ``"time"`` (frequency
        patch fixed at the base, as FlexiAST's VoxCeleb model) or
        ``"freq"``.
    num_prefix_tokens : int
        2 for cls + dist tokens (DeiT, AST), 1 for cls only (ViT).
    pooling : str
        ``"prefix_mean"`` pools ``(cls + dist) / 2`` (or cls when there is
        one prefix token), ``"cls"`` the cls token only.
    drop_path : float
        Stochastic depth rate, increasing linearly over the blocks.
    layer_norm_eps : float
        Epsilon of the block and final LayerNorms.
    fused_attn : bool
        Use ``scaled_dot_product_attention``.
    r : int, list or tuple
        Tokens merged per block: an int (same every block), a list (one per
        block) or ``(r, inflection)`` as ToMe's schedule. 0 is plain AST.
    keep_ratio : float, optional
        Instead of ``r``: keep this fraction of the mergeable tokens in each
        block, whatever the input length.
    prop_attn : bool
        Proportional attention (ToMe): weight keys by their token size.
    trace_source : bool
        Track which patches each token holds (for visualisation).
    init_from : str, optional
        Checkpoint to initialise from: an original AST ``.pth``, a Hugging
        Face AST folder, a FlexiAST ``.pth`` or a timm DeiT/ViT checkpoint
        (see ``fastast_plugin.checkpoints``). A flexible encoder also takes
        checkpoints of another kernel size or strides (PI-resized kernel,
        resampled positional embedding).

    Example
    -------
    >>> enc = ASTEncoder("tiny224", input_tdim=128, depth=2)
    >>> enc(torch.randn(2, 128, 128)).shape
    torch.Size([2, 1, 192])
    >>> enc.r = 16
    >>> enc.forward_features(torch.randn(2, 128, 128)).shape
    torch.Size([2, 114, 192])
    >>> flexi = ASTEncoder("tiny224", input_tdim=128, depth=1, fstride=16,
    ...                    tstride=16, flexible="both")
    >>> flexi.patch_size = 32
    >>> flexi.grid_size, flexi(torch.randn(2, 128, 128)).shape
    ((4, 4), torch.Size([2, 1, 192]))
    """

    def __init__(
        self,
        model_size: str = "base384",
        embed_dim: int = None,
        depth: int = None,
        num_heads: int = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        input_fdim: int = 128,
        input_tdim: int = 1024,
        patch_size: int = 16,
        fstride: int = 10,
        tstride: int = 10,
        flexible: Literal["none", "both", "time", "freq"] = "none",
        num_prefix_tokens: int = 2,
        pooling: Literal["prefix_mean", "cls"] = "prefix_mean",
        drop_path: float = 0.0,
        layer_norm_eps: float = 1e-6,
        fused_attn: bool = True,
        r=0,
        keep_ratio: float = None,
        prop_attn: bool = True,
        trace_source: bool = False,
        init_from: str = None,
    ):
        super().__init__()
        if model_size not in MODEL_SIZES:
            raise ValueError(
                f"model_size must be one of {sorted(MODEL_SIZES)}, got {model_size!r}"
            )
        if num_prefix_tokens not in (1, 2):
            raise ValueError(
                f"num_prefix_tokens must be 1 (cls) or 2 (cls + dist), got "
                f"{num_prefix_tokens}"
            )
        if flexible not in FLEXIBLE_AXES:
            raise ValueError(
                f"flexible must be one of {list(FLEXIBLE_AXES)}, got {flexible!r}"
            )
        if pooling not in ("prefix_mean", "cls"):
            raise ValueError(
                f"pooling must be 'prefix_mean' or 'cls', got {pooling!r}"
            )
        preset = MODEL_SIZES[model_size]
        self.embed_dim = embed_dim or preset[0]
        depth = depth or preset[1]
        num_heads = num_heads or preset[2]
        self.model_size = model_size
        self.input_fdim = input_fdim
        self.input_tdim = input_tdim
        self.num_prefix_tokens = num_prefix_tokens
        self.pooling = pooling
        self._flexible = flexible
        self.base_grid_size = grid_shape(
            input_fdim, input_tdim, patch_size, fstride, tstride
        )
        self._grid_size = self.base_grid_size
        num_patches = self.base_grid_size[0] * self.base_grid_size[1]

        self.patch_embed = PatchEmbed(self.embed_dim, patch_size, fstride, tstride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        self.dist_token = (
            nn.Parameter(torch.zeros(1, 1, self.embed_dim))
            if num_prefix_tokens == 2
            else None
        )
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_prefix_tokens + num_patches, self.embed_dim)
        )
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(
                self.embed_dim,
                num_heads,
                mlp_ratio,
                qkv_bias,
                rate,
                layer_norm_eps,
                fused_attn,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(self.embed_dim, eps=layer_norm_eps)
        self.reset_parameters()

        self.prop_attn = prop_attn
        self.trace_source = trace_source
        self._r = 0
        self._keep_ratio = None
        self.set_merge(r=r, keep_ratio=keep_ratio)
        if init_from:
            from fastast_plugin.checkpoints import load_encoder_weights

            load_encoder_weights(self, init_from)

    def reset_parameters(self):
        """Initialise weights as timm's ViT does (truncated normal 0.02)."""
        for token in (self.pos_embed, self.cls_token, self.dist_token):
            if token is not None:
                nn.init.trunc_normal_(token, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------
    # Token merging settings
    # ------------------------------------------------------------------
    @property
    def depth(self):
        """Number of blocks."""
        return len(self.blocks)

    @property
    def num_tokens(self):
        """Tokens entering the first block (current patch size, prefix included)."""
        return self.num_prefix_tokens + self._grid_size[0] * self._grid_size[1]

    @property
    def r(self):
        """Tokens merged per block (int, per-block list or ToMe schedule)."""
        return self._r

    @r.setter
    def r(self, value):
        self.set_merge(r=value)

    @property
    def keep_ratio(self):
        """Fraction of mergeable tokens kept per block, or None."""
        return self._keep_ratio

    @keep_ratio.setter
    def keep_ratio(self, value):
        self.set_merge(keep_ratio=value)

    def set_merge(self, r=0, keep_ratio=None):
        """Choose how many tokens each block merges, at any time.

        Arguments
        ---------
        r : int, list or tuple
            Tokens merged per block (see the class docstring).
        keep_ratio : float, optional
            Fraction of mergeable tokens kept per block; overrides ``r``.

        Example
        -------
        >>> enc = ASTEncoder("tiny224", input_tdim=128, depth=4)
        >>> enc.set_merge(keep_ratio=0.5)
        >>> enc.merge_schedule()
        [72, 36, 18, 9]
        """
        if isinstance(r, list):
            r = [int(v) for v in r]
        parse_r(self.depth, r)  # validates, raises with a clear message
        if keep_ratio is not None:
            keep_ratio_schedule(
                self.depth, self.num_tokens, keep_ratio, self.num_prefix_tokens
            )  # validates
        self._r = r
        self._keep_ratio = keep_ratio

    def merge_schedule(self, num_tokens=None):
        """Tokens each block is asked to merge for an input of ``num_tokens``.

        The per-block cap (at most half the mergeable tokens) is applied
        inside the merge itself.

        Arguments
        ---------
        num_tokens : int, optional
            Tokens entering the first block (default: this encoder's grid).

        Returns
        -------
        list of int
            One ``r`` per block.
        """
        num_tokens = num_tokens or self.num_tokens
        if self._keep_ratio is not None:
            return keep_ratio_schedule(
                self.depth, num_tokens, self._keep_ratio, self.num_prefix_tokens
            )
        return parse_r(self.depth, self._r)

    # ------------------------------------------------------------------
    # Patch size (FlexiAST)
    # ------------------------------------------------------------------
    @property
    def flexible(self):
        """Which patch axes may change: ``none``, ``both``, ``time`` or ``freq``."""
        return self._flexible

    @property
    def grid_size(self):
        """Patch grid ``(f_dim, t_dim)`` at the current patch size and stride."""
        return self._grid_size

    @property
    def patch_size(self):
        """Current patch size ``(freq, time)``; assigning calls ``set_patch_size``."""
        return self.patch_embed.patch_size

    @patch_size.setter
    def patch_size(self, value):
        self.set_patch_size(value)

    @property
    def patch_stride(self):
        """Current patch stride ``(freq, time)``."""
        return self.patch_embed.stride

    def set_patch_size(self, patch_size=None, stride=None):
        """Run at another patch size (and stride) from now on, same weights.

        The stored kernel is PI-resized and the stored positional grid
        resampled in every forward; merging (``r``, ``keep_ratio``) applies
        on top, to the new token count. At the base patch size and strides
        the encoder computes exactly what the fixed-patch encoder does.

        Arguments
        ---------
        patch_size : int or tuple of int, optional
            An int is used on the flexible axes (both, or only time / only
            frequency, see ``flexible``) and the base patch on the others;
            a ``(freq, time)`` pair must keep the base on a fixed axis.
            None restores the base patch size and base strides.
        stride : int or tuple of int, optional
            Like ``patch_size``; None means the patch size on the flexible
            axes (non-overlapping patches, as FlexiAST) and the base stride
            on the fixed ones.

        Example
        -------
        >>> enc = ASTEncoder("tiny224", input_tdim=1024, depth=1, fstride=16,
        ...                  tstride=16, flexible="time")
        >>> enc.set_patch_size(48)
        >>> enc.patch_size, enc.patch_stride, enc.grid_size, enc.num_tokens
        ((16, 48), (16, 48), (8, 21), 170)
        """
        base = self.patch_embed.base_patch_size
        base_stride = self.patch_embed.base_stride
        if patch_size is None:
            patch = base
            default_stride = base_stride
        else:
            patch = self._on_flexible_axes(patch_size, base, "patch_size")
            axes = FLEXIBLE_AXES[self._flexible]
            default_stride = tuple(
                patch[i] if i in axes else base_stride[i] for i in range(2)
            )
        if stride is None:
            stride = default_stride
        else:
            stride = self._on_flexible_axes(stride, base_stride, "stride")
        if self._flexible == "none" and (patch, stride) != (base, base_stride):
            raise ValueError(
                f"patch_size {patch} with stride {stride} differs from the base "
                f"patch {base} with stride {base_stride}, but this encoder has "
                "flexible='none'; build it with flexible='both', 'time' or "
                "'freq' to change the patch size"
            )
        grid = grid_shape(self.input_fdim, self.input_tdim, patch, *stride)
        self.patch_embed.set_patch_size(patch, stride)
        self._grid_size = grid

    def _on_flexible_axes(self, value, base, name):
        """``(freq, time)`` from an int on the flexible axes or a checked pair."""
        axes = FLEXIBLE_AXES[self._flexible] or (0, 1)
        if not isinstance(value, (tuple, list)):  # one size for the flexible axes
            size = to_pair(value, name)[0]  # validates, naming the value given
            value = tuple(size if i in axes else base[i] for i in range(2))
        pair = to_pair(value, name)
        for i in set(range(2)) - set(axes):
            if pair[i] != base[i]:
                axis = ("frequency", "time")[i]
                raise ValueError(
                    f"flexible={self._flexible!r} keeps the {axis} {name} at its "
                    f"base {base[i]}, got {name} {pair}"
                )
        return pair

    # ------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------
    def embed(self, feats):
        """Patch-embed ``feats`` [batch, time, freq] and add prefix + position.

        Returns
        -------
        torch.Tensor
            ``[batch, num_prefix_tokens + patches, dim]``.
        """
        if feats.dim() != 3 or feats.shape[1:] != (self.input_tdim, self.input_fdim):
            raise ValueError(
                f"ASTEncoder expects features [batch, {self.input_tdim}, "
                f"{self.input_fdim}] (time, mel), got {tuple(feats.shape)}; pad "
                "or crop the input, e.g. KaldiFbank(target_length="
                f"{self.input_tdim})"
            )
        x = self.patch_embed(feats.transpose(1, 2).unsqueeze(1))
        prefix = [self.cls_token, self.dist_token][: self.num_prefix_tokens]
        prefix = torch.cat(prefix, dim=1).expand(x.shape[0], -1, -1)
        return torch.cat([prefix, x], dim=1) + self.position_embedding()

    def position_embedding(self):
        """Positional embedding for the current grid ``[1, num_tokens, dim]``.

        The stored one at the base grid; otherwise resampled from it
        (bilinear with antialiasing, prefix tokens kept, as FlexiAST).
        """
        if self._grid_size == self.base_grid_size:
            return self.pos_embed
        return resample_pos_embed(
            self.pos_embed,
            self.base_grid_size,
            self._grid_size,
            self.num_prefix_tokens,
        )

    def forward_tokens(self, feats):
        """Run the encoder and return the tokens with their merge state.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``.

        Returns
        -------
        tokens : torch.Tensor
            ``[batch, num_prefix_tokens + remaining, dim]`` after the final
            norm.
        state : MergeState
            Sizes (None if nothing merged) and sources (None unless
            ``trace_source``); sources cover the prefix tokens too.
        """
        x = self.embed(feats)
        schedule = self.merge_schedule(x.shape[1])
        state = MergeState()
        for block, r in zip(self.blocks, schedule):
            x, state = block(
                x,
                state,
                r,
                self.num_prefix_tokens,
                self.prop_attn,
                self.trace_source,
            )
        return self.norm(x), state

    def forward_features(self, feats):
        """Tokens after the final norm, before pooling.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``.

        Returns
        -------
        torch.Tensor
            ``[batch, num_prefix_tokens + remaining, dim]``.
        """
        return self.forward_tokens(feats)[0]

    def pool(self, tokens):
        """Pool tokens into one embedding ``[batch, 1, dim]``."""
        if self.pooling == "prefix_mean":
            return tokens[:, : self.num_prefix_tokens].mean(1, keepdim=True)
        return tokens[:, :1]

    def forward(self, feats, lengths=None):
        """Embed a batch of spectrograms.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]`` of exactly ``input_tdim`` frames.
        lengths : torch.Tensor, optional
            Relative lengths (SpeechBrain convention). AST attends over the
            padded input as the original model does, so they are unused.

        Returns
        -------
        torch.Tensor
            ``[batch, 1, dim]``.
        """
        return self.pool(self.forward_features(feats))


class ASTHead(nn.Module):
    """AST's classification head: LayerNorm then Linear.

    Arguments
    ---------
    input_size : int
        Embedding dimension.
    n_classes : int
        Number of classes.
    layer_norm_eps : float
        Epsilon of the LayerNorm (1e-5 in AST, 1e-12 in Hugging Face).

    Example
    -------
    >>> ASTHead(192, 35)(torch.randn(2, 1, 192)).shape
    torch.Size([2, 1, 35])
    """

    def __init__(self, input_size=768, n_classes=527, layer_norm_eps=1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(input_size, eps=layer_norm_eps)
        self.linear = nn.Linear(input_size, n_classes)

    def forward(self, emb):
        """Map embeddings ``[batch, 1, dim]`` to logits ``[batch, 1, classes]``."""
        return self.linear(self.norm(emb))


class ASTClassifier(nn.Module):
    """An encoder and a head: features in, logits out.

    Arguments
    ---------
    encoder : ASTEncoder
        The encoder.
    head : ASTHead
        The classification head.

    Example
    -------
    >>> model = ASTClassifier(
    ...     ASTEncoder("tiny224", input_tdim=128, depth=2), ASTHead(192, 10)
    ... )
    >>> model(torch.randn(2, 128, 128)).shape
    torch.Size([2, 10])
    """

    def __init__(self, encoder, head):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, feats, lengths=None):
        """Return logits ``[batch, classes]`` for features ``[batch, time, freq]``."""
        return self.head(self.encoder(feats, lengths)).squeeze(1)
