"""Audio Spectrogram Transformer encoder with token merging and flexible patches.

Our own modules for AST (Gong et al., 2021): a DeiT/ViT encoder over 16x16
patches of a log-mel spectrogram. Parameter names follow timm's
``VisionTransformer`` so that AST, DeiT and ViT weights load by name. Token
merging (ToMe, Bolya et al., 2023) runs between attention and MLP in every
block when ``r > 0``; with ``r = 0`` the encoder is plain AST. A flexible
encoder (``flexible != "none"``, FlexiAST, Feng et al., 2023) runs at any
patch size chosen with ``set_patch_size``: its one stored kernel is
PI-resized and its one stored positional grid resampled in every forward
(``fastast_plugin.weights.resize``). Inputs of any length run either padded or
cropped to the model's input, as AST does, or at their own length
(``length_mode``), with the padding of a batch masked.

Authors
 * fastast developers 2026
"""

from typing import Literal

import torch
from torch import nn

from fastast_plugin.models.layers import Block, MergeState, PatchEmbed
from fastast_plugin.models.lengths import (
    LENGTH_MODES,
    check_frames,
    clip_frames,
    fit_frames,
    frames_for_columns,
    length_groups,
    padding_mask,
    real_tokens_first,
    scatter_runs,
    time_columns,
)
from fastast_plugin.models.merge import keep_ratio_schedule, parse_r
from fastast_plugin.weights.fit import load_encoder_weights
from fastast_plugin.weights.resize import parse_patch_size, patch_grid, resample_pos_embed

__all__ = ["LENGTH_MODES", "MODEL_SIZES", "ASTClassifier", "ASTEncoder", "ASTHead"]

# (embed_dim, depth, num_heads) of the DeiT backbones AST builds on.
MODEL_SIZES = {
    "tiny224": (192, 12, 3),
    "small224": (384, 12, 6),
    "base224": (768, 12, 12),
    "base384": (768, 12, 12),
}
_FLEXIBLE_AXES = {"none": (), "both": (0, 1), "freq": (0,), "time": (1,)}
_POOLINGS = ("prefix_mean", "cls", "patch_mean")


class ASTEncoder(nn.Module):
    """AST encoder: patch embedding, prefix tokens, blocks, norm, pooling.

    Follows SpeechBrain's encoder contract ``forward(feats, lengths) ->
    [batch, 1, dim]`` so it drops into any ``embedding_model`` slot, with
    features of any number of frames (at least one patch in ``"native"``
    mode). ``lengths`` are relative *frame* lengths (a clip's own frames
    over the batch's); ``fastast_plugin.models.features.batch_features`` computes
    them from waveform lengths. SpeechBrain's ``EncoderClassifier`` passes
    waveform lengths instead, which is off by up to two frames in
    ``"native"`` mode.

    **Input length** (``length_mode``, settable at run time):

    * ``"pad"`` (AST, the default): features are zero-padded at the end or
      cropped to ``input_tdim`` frames, and the model attends over its
      padding as AST does (``lengths`` are unused). AST pads its fbank with
      zeros *before* its ``(x - mean) / (2 std)`` normalisation, which the
      encoder cannot know; to pad exactly as AST, pad the features upstream
      (``KaldiFbank(target_length=input_tdim)``, as the pretrained
      interface does).
    * ``"native"``: the clip runs at its own length, its patches at the
      positions the padded input gives them (the positional grid cut to its
      first time columns), so a clip of a tenth of ``input_tdim`` costs
      about a tenth of the tokens. Longer than ``input_tdim`` is an error
      (window long audio instead). At ``input_tdim`` frames it computes
      exactly what ``"pad"`` does.

    **Masking** is on in ``"native"`` mode when ``lengths`` (SpeechBrain's
    relative lengths) give clips of different numbers of patch columns: a
    clip's embedding is then that of the clip alone (up to float rounding),
    whatever the padding of its batch. A patch is real when it lies within
    the clip's ``round(length * frames)`` frames. Without merging the batch
    runs in one pass with its padding masked, with merging one pass per
    clip length (``fastast_plugin.models.lengths``; what each costs:
    README, "Cost of variable lengths"). ``lengths`` that are None or give
    every clip the whole input run the plain path (one pass, no mask),
    which ``torch.compile`` traces; so do lengths in ``"pad"`` mode.

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
        one prefix token), as AST; ``"cls"`` the cls token only;
        ``"patch_mean"`` the mean of the patch tokens, each weighted by the
        patches it holds after merging and padding left out (global average
        pooling: learns faster from random weights on small data, where the
        prefix tokens must first learn what to attend to).
    drop_path : float
        Stochastic depth rate, increasing linearly over the blocks.
    layer_norm_eps : float
        Epsilon of the block and final LayerNorms.
    fused_attn : bool
        Use ``scaled_dot_product_attention``.
    r : int, list or tuple
        Tokens merged per block: an int (same every block), a list of ints
        (one per block) or ToMe's ``(r, inflection)`` schedule, written
        ``[16, -1.0]`` in YAML (a 2-list whose second value is a float; see
        ``fastast_plugin.models.merge.parse_r``). 0 is plain AST.
    keep_ratio : float, optional
        Instead of ``r``: keep this fraction of the mergeable tokens in each
        block, whatever the input length.
    prop_attn : bool
        Proportional attention (ToMe): weight keys by their token size.
    trace_source : bool
        Track which patches each token holds (for visualisation).
    length_mode : str
        ``"pad"`` (pad or crop to ``input_tdim``, as AST) or ``"native"``
        (run at the input's own length, padding of a batch masked); see
        above.
    init_from : str, optional
        Checkpoint to initialise from: an original AST ``.pth``, a Hugging
        Face AST folder, a FlexiAST ``.pth`` or a timm DeiT/ViT checkpoint
        (see ``fastast_plugin.weights.fit``). A flexible encoder also takes
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
    >>> enc.length_mode = "native"  # a clip of 48 frames and one of 128
    >>> enc.forward_features(torch.randn(2, 128, 128), torch.tensor([0.375, 1.0])).shape
    torch.Size([2, 114, 192])
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
        pooling: Literal["prefix_mean", "cls", "patch_mean"] = "prefix_mean",
        drop_path: float = 0.0,
        layer_norm_eps: float = 1e-6,
        fused_attn: bool = True,
        r=0,
        keep_ratio: float = None,
        prop_attn: bool = True,
        trace_source: bool = False,
        length_mode: Literal["pad", "native"] = "pad",
        init_from: str = None,
    ):
        super().__init__()
        if model_size not in MODEL_SIZES:
            raise ValueError(f"model_size must be one of {sorted(MODEL_SIZES)}, got {model_size!r}")
        if num_prefix_tokens not in (1, 2):
            raise ValueError(
                f"num_prefix_tokens must be 1 (cls) or 2 (cls + dist), got {num_prefix_tokens}"
            )
        if flexible not in _FLEXIBLE_AXES:
            raise ValueError(f"flexible must be one of {list(_FLEXIBLE_AXES)}, got {flexible!r}")
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {list(_POOLINGS)}, got {pooling!r}")
        preset = MODEL_SIZES[model_size]
        self.embed_dim = embed_dim or preset[0]
        depth = depth or preset[1]
        num_heads = num_heads or preset[2]
        # The architecture as built; init_kwargs() adds the run-time settings.
        self._architecture = {
            "model_size": model_size,
            "embed_dim": self.embed_dim,
            "depth": depth,
            "num_heads": num_heads,
            "mlp_ratio": mlp_ratio,
            "qkv_bias": qkv_bias,
            "input_fdim": input_fdim,
            "input_tdim": input_tdim,
            "patch_size": patch_size if isinstance(patch_size, int) else list(patch_size),
            "fstride": fstride,
            "tstride": tstride,
            "flexible": flexible,
            "num_prefix_tokens": num_prefix_tokens,
            "pooling": pooling,
            "drop_path": drop_path,
            "layer_norm_eps": layer_norm_eps,
            "fused_attn": fused_attn,
        }
        self.model_size = model_size
        self.input_fdim = input_fdim
        self.input_tdim = input_tdim
        self.num_prefix_tokens = num_prefix_tokens
        self.pooling = pooling
        self._flexible = flexible
        self.base_grid_size = patch_grid((input_fdim, input_tdim), patch_size, (fstride, tstride))
        self._grid_size = self.base_grid_size
        num_patches = self.base_grid_size[0] * self.base_grid_size[1]

        self.patch_embed = PatchEmbed(self.embed_dim, patch_size, fstride, tstride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        self.dist_token = (
            nn.Parameter(torch.zeros(1, 1, self.embed_dim)) if num_prefix_tokens == 2 else None
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
                num_protected=num_prefix_tokens,
                prop_attn=prop_attn,
                trace_source=trace_source,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(self.embed_dim, eps=layer_norm_eps)
        self.reset_parameters()

        self.length_mode = length_mode
        self._r = 0
        self._keep_ratio = None
        self.set_merge(r=r, keep_ratio=keep_ratio)
        if init_from:
            load_encoder_weights(self, init_from)

    def init_kwargs(self):
        """Constructor arguments that rebuild this encoder, with its current settings.

        Not named ``config``: SpeechBrain's ESC-50 recipe and Hugging Face
        code take any module with a ``config`` attribute for a
        ``transformers`` model and read ``config.image_size`` and the like.

        Returns
        -------
        dict
            JSON-serialisable keyword arguments of ``ASTEncoder`` (all but
            ``init_from``); ``r``, ``keep_ratio``, ``prop_attn``,
            ``trace_source`` and ``length_mode`` as currently set. The
            run-time patch size of a
            flexible encoder is ``patch_size`` (the property), not part of it.

        Example
        -------
        >>> enc = ASTEncoder("tiny224", depth=2, input_tdim=128, r=[16, -1.0])
        >>> twin = ASTEncoder(**enc.init_kwargs())
        >>> twin.merge_schedule() == enc.merge_schedule(), twin.init_kwargs() == enc.init_kwargs()
        (True, True)
        """
        r = self._r
        return {
            **self._architecture,
            "r": list(r) if isinstance(r, (list, tuple)) else r,
            "keep_ratio": self._keep_ratio,
            "prop_attn": self.prop_attn,
            "trace_source": self.trace_source,
            "length_mode": self.length_mode,
        }

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
    # Input length
    # ------------------------------------------------------------------
    @property
    def length_mode(self):
        """``"pad"`` (to ``input_tdim``, as AST) or ``"native"`` (own length)."""
        return self._length_mode

    @length_mode.setter
    def length_mode(self, value):
        if value not in LENGTH_MODES:
            raise ValueError(f"length_mode must be one of {list(LENGTH_MODES)}, got {value!r}")
        self._length_mode = value

    @property
    def min_frames(self):
        """Fewest frames of an input in ``"native"`` mode: one patch at the current size.

        In ``"pad"`` mode any input of at least one frame is padded to
        ``input_tdim`` first.
        """
        return self.patch_size[1]

    def grid_for(self, frames):
        """Patch grid ``(f_dim, t_dim)`` of an input of ``frames`` frames.

        In ``"pad"`` mode every input runs at ``grid_size``; in
        ``"native"`` mode at the columns its own frames fill.

        Arguments
        ---------
        frames : int
            Frames of the input (``min_frames`` to
            ``input_tdim`` in ``"native"`` mode).

        Returns
        -------
        tuple of int
            ``(f_dim, t_dim)``.

        Example
        -------
        >>> enc = ASTEncoder("tiny224", input_tdim=1024, depth=1, length_mode="native")
        >>> enc.grid_size, enc.grid_for(100), enc.grid_for(1024)
        ((12, 101), (12, 9), (12, 101))
        """
        self._check_frames(frames)
        if self._length_mode == "pad":
            return self._grid_size
        return self._grid_size[0], self._time_columns(frames)

    def _check_frames(self, frames):
        check_frames(frames, self._length_mode, self.min_frames, self.input_tdim)

    def _time_columns(self, frames):
        """Patch columns that ``frames`` frames fill at the current patch size."""
        return time_columns(frames, self.patch_size[1], self.patch_stride[1])

    def _frames_for(self, columns):
        """Fewest frames that give ``columns`` patch columns at the current patch size."""
        return frames_for_columns(columns, self.patch_size[1], self.patch_stride[1])

    # ------------------------------------------------------------------
    # Token merging settings
    # ------------------------------------------------------------------
    # prop_attn and trace_source live on the blocks, which read them in
    # every forward; these properties set them on every block at once.
    @property
    def prop_attn(self):
        """Proportional attention (ToMe): keys weighted by their token size."""
        return self.blocks[0].prop_attn

    @prop_attn.setter
    def prop_attn(self, value):
        for block in self.blocks:
            block.prop_attn = value

    @property
    def trace_source(self):
        """Whether the blocks track which patches each token holds."""
        return self.blocks[0].trace_source

    @trace_source.setter
    def trace_source(self, value):
        for block in self.blocks:
            block.trace_source = value

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
        >>> enc.set_merge(r=[16, -1.0])  # ToMe's (r, inflection) schedule, as YAML writes it
        >>> enc.merge_schedule()
        [32, 21, 10, 0]
        """
        if isinstance(r, list):
            r = list(r)  # a copy; values untouched: [16, -1.0] is a schedule
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
            axes = _FLEXIBLE_AXES[self._flexible]
            default_stride = tuple(patch[i] if i in axes else base_stride[i] for i in range(2))
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
        grid = patch_grid((self.input_fdim, self.input_tdim), patch, stride)
        self.patch_embed.set_patch_size(patch, stride)
        self._grid_size = grid

    def _on_flexible_axes(self, value, base, name):
        """``(freq, time)`` from an int on the flexible axes or a checked pair."""
        axes = _FLEXIBLE_AXES[self._flexible] or (0, 1)
        pair = parse_patch_size(value, name, as_pair=False)
        if isinstance(pair, int):  # one size for the flexible axes
            pair = tuple(pair if i in axes else base[i] for i in range(2))
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

        The positional grid is cut to the input's time columns (the first
        ones: the positions a padded input gives them); padding or cropping
        to ``input_tdim`` happens before, in ``forward_tokens``.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``, ``min_frames`` to
            ``input_tdim`` frames.

        Returns
        -------
        torch.Tensor
            ``[batch, num_prefix_tokens + patches, dim]``.
        """
        x = self.patch_embed(feats.transpose(1, 2).unsqueeze(1))
        prefix = [self.cls_token, self.dist_token][: self.num_prefix_tokens]
        prefix = torch.cat(prefix, dim=1).expand(x.shape[0], -1, -1)
        columns = self._time_columns(feats.shape[1])
        return torch.cat([prefix, x], dim=1) + self.position_embedding(columns)

    def position_embedding(self, columns=None):
        """Positional embedding for the current grid ``[1, num_tokens, dim]``.

        The stored one at the base grid; otherwise resampled from it
        (bilinear with antialiasing, prefix tokens kept, as FlexiAST).

        Arguments
        ---------
        columns : int, optional
            Keep only the first ``columns`` time columns of the grid (an
            input shorter than ``input_tdim``); None keeps them all.

        Returns
        -------
        torch.Tensor
            ``[1, num_prefix_tokens + f_dim * columns, dim]``.
        """
        pos = self.pos_embed
        if self._grid_size != self.base_grid_size:
            pos = resample_pos_embed(
                pos, self.base_grid_size, self._grid_size, self.num_prefix_tokens
            )
        f_dim, t_dim = self._grid_size
        if columns is None or columns == t_dim:
            return pos
        prefix, grid = pos.split([self.num_prefix_tokens, f_dim * t_dim], dim=1)
        grid = grid.unflatten(1, (f_dim, t_dim))[:, :, :columns].flatten(1, 2)
        return torch.cat([prefix, grid], dim=1)

    def fit_length(self, feats):
        """Check ``feats`` [batch, time, freq] and fit its time to the length mode.

        ``"pad"``: zero-padded at the end or cropped to ``input_tdim``
        frames (AST); ``"native"``: unchanged, at most ``input_tdim``.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``.

        Returns
        -------
        torch.Tensor
            The features the blocks run on.

        Example
        -------
        >>> enc = ASTEncoder("tiny224", input_tdim=128, depth=1)
        >>> enc.fit_length(torch.randn(2, 100, 128)).shape
        torch.Size([2, 128, 128])
        """
        if feats.dim() != 3 or feats.shape[2] != self.input_fdim:
            raise ValueError(
                f"ASTEncoder expects features [batch, time, {self.input_fdim}] "
                f"(time frames, {self.input_fdim} mel bands), got "
                f"{tuple(feats.shape)}"
            )
        self._check_frames(feats.shape[1])
        return fit_frames(feats, self._length_mode, self.input_tdim)

    def forward_tokens(self, feats, lengths=None):
        """Run the encoder and return the tokens with their merge state.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``, any number of frames (see
            ``length_mode``).
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (SpeechBrain); used in ``"native"``
            mode only, where padding is masked (see the class docstring).

        Returns
        -------
        tokens : torch.Tensor
            ``[batch, num_prefix_tokens + remaining, dim]`` after the final
            norm. With masking, row ``i`` holds the tokens of clip ``i``
            alone, in the same order, then zeros up to the longest.
        state : MergeState
            Sizes (None if nothing merged) and sources (None unless
            ``trace_source``); sources cover the prefix tokens too (with
            masking, they index each clip's own grid). ``valid`` marks the
            real tokens when masking left padding in a row (else None).

        Example
        -------
        >>> enc = ASTEncoder("tiny224", input_tdim=128, depth=1, length_mode="native")
        >>> feats, lengths = torch.randn(2, 64, 128), torch.tensor([0.5, 1.0])
        >>> tokens, state = enc.forward_tokens(feats, lengths)
        >>> tokens.shape, state.valid.sum(1).tolist()
        (torch.Size([2, 62, 192]), [26, 62])
        """
        feats = self.fit_length(feats)
        frames = None
        if self._length_mode == "native":
            frames = clip_frames(feats, lengths, self.min_frames)
        if frames is None:
            return self._encode(feats)
        columns = [self._time_columns(n) for n in frames]
        if len(set(columns)) == 1:  # the same clip length: crop, no padding
            return self._encode(feats[:, : self._frames_for(columns[0])])
        if any(self.merge_schedule(self._tokens_for(max(columns)))):
            return self._encode_by_length(feats, columns)
        return self._encode_masked(feats, columns)

    def _tokens_for(self, columns):
        return self.num_prefix_tokens + self._grid_size[0] * columns

    def _encode(self, feats, valid=None):
        """Embed, blocks, norm: one pass, every row the same length."""
        x = self.embed(feats)
        schedule = self.merge_schedule(x.shape[1])
        state = MergeState(valid=valid)
        for block, r in zip(self.blocks, schedule):
            x, state = block(x, state, r)
        return self.norm(x), state

    def _encode_masked(self, feats, columns):
        """One pass over the batch cut to its longest clip, padding masked.

        Only without merging: attention is then the only place where
        tokens meet, and masking padding keys makes each clip's tokens
        those of the clip alone.
        """
        feats = feats[:, : self._frames_for(max(columns))]
        valid = padding_mask(columns, self._grid_size[0], self.num_prefix_tokens, feats.device)
        tokens, state = self._encode(feats, valid)
        tokens, valid = real_tokens_first(tokens, valid)
        return tokens, MergeState(state.size, state.source, valid)

    def _encode_by_length(self, feats, columns):
        """One pass per distinct clip length, each at its own length.

        With merging, padding would change which tokens merge (ToMe pairs
        them by position), so no row carries any.
        """
        runs = []
        for c, rows in length_groups(columns):
            index = torch.tensor(rows, device=feats.device)
            group_feats = feats.index_select(0, index)[:, : self._frames_for(c)]
            runs.append((index, *self._encode(group_feats)))
        return scatter_runs(runs, feats.shape[0])

    def forward_features(self, feats, lengths=None):
        """Tokens after the final norm, before pooling.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (used in ``"native"`` mode).

        Returns
        -------
        torch.Tensor
            ``[batch, num_prefix_tokens + remaining, dim]`` (see
            ``forward_tokens`` for the layout with masking).
        """
        return self.forward_tokens(feats, lengths)[0]

    def pool(self, tokens, state=MergeState()):
        """Pool tokens into one embedding ``[batch, 1, dim]``.

        Arguments
        ---------
        tokens : torch.Tensor
            ``[batch, num_prefix_tokens + remaining, dim]`` from
            ``forward_tokens``.
        state : MergeState
            Its merge state: ``"patch_mean"`` weights each patch token by
            its ``size`` (so the mean is over the input patches, whatever
            merged) and leaves out tokens ``valid`` marks as padding. The
            prefix poolings read the prefix tokens only, never padding.

        Returns
        -------
        torch.Tensor
            ``[batch, 1, dim]``.
        """
        if self.pooling == "prefix_mean":
            return tokens[:, : self.num_prefix_tokens].mean(1, keepdim=True)
        if self.pooling == "cls":
            return tokens[:, :1]
        patches = tokens[:, self.num_prefix_tokens :]
        # Weights and sums in at least fp32, as merge_wavg: under bf16 autocast
        # a sum over a thousand tokens would lose the result's last bits.
        dtype = torch.promote_types(patches.dtype, torch.float32)
        if state.size is None:
            weight = patches.new_ones(*patches.shape[:2], 1, dtype=dtype)
        else:
            weight = state.size[:, self.num_prefix_tokens :].to(dtype)
        if state.valid is not None:
            weight = weight * state.valid[:, self.num_prefix_tokens :, None]
        total = (patches.to(dtype) * weight).sum(1, keepdim=True)
        return (total / weight.sum(1, keepdim=True)).to(patches.dtype)

    def forward(self, feats, lengths=None):
        """Embed a batch of spectrograms.

        Arguments
        ---------
        feats : torch.Tensor
            Features ``[batch, time, freq]``, any number of frames (at least
            one patch in ``"native"`` mode, see ``length_mode``).
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (SpeechBrain convention). In
            ``"native"`` mode padding is masked, so a clip's embedding does
            not depend on its batch; in ``"pad"`` mode they are unused (AST
            attends over its padding).

        Returns
        -------
        torch.Tensor
            ``[batch, 1, dim]``.
        """
        return self.pool(*self.forward_tokens(feats, lengths))


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
    labels : list of str, optional
        Class names, one per output (e.g. a Hugging Face ``id2label``);
        None when unknown. Not part of the state dict.

    Example
    -------
    >>> model = ASTClassifier(
    ...     ASTEncoder("tiny224", input_tdim=128, depth=2), ASTHead(192, 2),
    ...     labels=["dog", "cat"],
    ... )
    >>> model(torch.randn(2, 128, 128)).shape, model.labels
    (torch.Size([2, 2]), ['dog', 'cat'])
    """

    def __init__(self, encoder, head, labels=None):
        super().__init__()
        self.encoder = encoder
        self.head = head
        if isinstance(head, ASTHead) and labels is not None:
            n_classes = head.linear.out_features
            if len(labels) != n_classes:
                raise ValueError(
                    f"labels has {len(labels)} names for a head of {n_classes} "
                    "classes; give one name per class"
                )
        self.labels = None if labels is None else list(labels)

    def forward(self, feats, lengths=None):
        """Return logits ``[batch, classes]`` for features ``[batch, time, freq]``."""
        return self.head(self.encoder(feats, lengths)).squeeze(1)
