"""Transformer layers of the AST encoder: patch embedding, attention, blocks.

Our own modules with timm's ``VisionTransformer`` parameter names
(``patch_embed.proj``, ``attn.qkv``, ``attn.proj``, ``mlp.fc1``,
``mlp.fc2``, ``norm1``, ``norm2``) so that AST, DeiT and ViT weights load
by name. The MLP and stochastic depth are timm's own ``timm.layers.Mlp``
and ``timm.layers.DropPath``. ``Attention`` also returns ToMe's merge
metric (the keys averaged over heads, Bolya et al., 2023) and ``Block``
merges ``r`` tokens between attention and MLP (ToMe's
``tome/patch/timm.py`` ``ToMeBlock``), threading the token sizes and
sources through a ``MergeState``. A ``MergeState.valid`` mask keeps padding
tokens out of attention (as keys) for batches of clips of different
lengths.

Authors
 * fastast developers 2026
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from fastast_plugin.models.merge import bipartite_soft_matching, merge_source, merge_wavg
from fastast_plugin.weights.resize import kernel_matrices, parse_patch_size, pi_resize

__all__ = ["Attention", "Block", "MergeState", "PatchEmbed"]


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
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=(fstride, tstride))
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
        self.patch_size = parse_patch_size(patch_size)
        self.proj.stride = parse_patch_size(stride, "stride")
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
    ``log(size)`` is added to the attention logits of every key. A
    ``valid`` mask, when given, adds ``-inf`` to the logits of every padding
    key, so that no token attends to padding (padding queries still run,
    and their outputs are meaningless).

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
    >>> x = torch.randn(1, 10, 64)
    >>> valid = torch.arange(10).unsqueeze(0) < 6  # the last 4 tokens are padding
    >>> masked, _ = attn(x, valid=valid)
    >>> torch.allclose(masked[:, :6], attn(x[:, :6])[0], atol=1e-6)
    True
    """

    def __init__(self, dim, num_heads, qkv_bias=True, fused_attn=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, size=None, valid=None):
        """Attend over ``x`` [batch, tokens, dim].

        Arguments
        ---------
        x : torch.Tensor
            Tokens ``[batch, tokens, dim]``.
        size : torch.Tensor, optional
            Number of patches each token holds ``[batch, tokens, 1]``;
            enables proportional attention.
        valid : torch.Tensor, optional
            Bool ``[batch, tokens]``, False for padding tokens, which are
            then no key of any query. Every row needs a valid token.

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
        bias = _key_bias(size, valid, B, N, q.dtype)
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            logits = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                logits = logits + bias
            out = logits.softmax(dim=-1) @ v
        out = self.proj(out.transpose(1, 2).reshape(B, N, C))
        return out, k.mean(1)


def _key_bias(size, valid, batch, tokens, dtype):
    """Additive attention bias over keys ``[batch, 1, 1, tokens]``, or None.

    ``log(size)`` for proportional attention plus ``-inf`` on padding keys;
    None when neither is given, so that plain attention takes the fastest
    kernel.
    """
    bias = None
    if size is not None:
        bias = size.log().to(dtype).reshape(batch, 1, 1, tokens)
    if valid is not None:
        padding = ~valid.reshape(batch, 1, 1, tokens)
        if bias is None:
            bias = torch.zeros(padding.shape, dtype=dtype, device=padding.device)
        bias = bias.masked_fill(padding, -math.inf)
    return bias


class MergeState(NamedTuple):
    """What token merging tracks through the blocks.

    ``size`` is the number of input patches each token holds
    ``[batch, tokens, 1]`` (None before the first merge); ``source`` maps
    tokens to the input tokens they hold ``[batch, tokens, input_tokens]``
    (None unless source tracing is on); ``valid`` is a bool
    ``[batch, tokens]`` mask, False for padding tokens of a batch of clips
    of different lengths (None when every token is real).
    """

    size: torch.Tensor | None = None
    source: torch.Tensor | None = None
    valid: torch.Tensor | None = None


class Block(nn.Module):
    """Pre-norm transformer block that merges ``r`` tokens after attention.

    Padding tokens (``state.valid``) are masked out of attention. Merging
    cannot be combined with such a mask: ToMe's matching pairs tokens by
    position, so padding would change which real tokens merge
    (``ASTEncoder`` runs each clip length on its own instead).

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
    num_protected : int
        Leading tokens that are never merged (0, 1 = cls, 2 = cls+dist).
    prop_attn : bool
        Weight attention by token size.
    trace_source : bool
        Track which input tokens each token holds.

    The last three are the encoder's settings, stored on the block (the
    encoder's ``prop_attn`` and ``trace_source`` properties set them on
    every block); only ``r``, which depends on the input, comes with
    each call.

    Example
    -------
    >>> block = Block(64, 4, num_protected=2)
    >>> x, state = block(torch.randn(2, 12, 64), r=3)
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
        num_protected=0,
        prop_attn=True,
        trace_source=False,
    ):
        super().__init__()
        self.num_protected = num_protected
        self.prop_attn = prop_attn
        self.trace_source = trace_source
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))  # fc1, GELU, fc2 (timm)
        self.drop_path = DropPath(drop_path)

    def forward(self, x, state=MergeState(), r=0):
        """Attention, then merge ``r`` tokens, then MLP.

        Arguments
        ---------
        x : torch.Tensor
            Tokens ``[batch, tokens, dim]``.
        state : MergeState
            Token sizes, sources and padding mask from the previous block.
        r : int
            Number of tokens to merge away in this block; must be 0 when
            ``state.valid`` is set.

        Returns
        -------
        x : torch.Tensor
            ``[batch, tokens - r, dim]``.
        state : MergeState
            Updated sizes and sources.
        """
        if r > 0 and state.valid is not None:
            raise ValueError(
                "Block cannot merge tokens (r > 0) with a padding mask "
                "(state.valid): merging pairs tokens by position, so padding "
                "would change the merge; run each length on its own"
            )
        attn_size = state.size if self.prop_attn else None
        x_attn, metric = self.attn(self.norm1(x), attn_size, state.valid)
        x = x + self.drop_path(x_attn)
        if r > 0:
            merge, _ = bipartite_soft_matching(
                metric,
                r,
                class_token=self.num_protected >= 1,
                distill_token=self.num_protected >= 2,
            )
            source = state.source
            if self.trace_source:
                source = merge_source(merge, x, source)
            x, size = merge_wavg(merge, x, state.size)
            # A new MergeState, not ``_replace``: torch.compile cannot return
            # the latter from a graph (torch 2.11).
            state = MergeState(size, source, state.valid)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, state
