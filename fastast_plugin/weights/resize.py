"""Patch geometry and weight resizing for flexible patch sizes (FlexiViT / FlexiAST).

One stored patch kernel and one stored positional grid serve every patch
size. The kernel is resized with the pseudo-inverse resize (PI-resize) of
FlexiViT, which keeps the token of a patch unchanged when the patch itself
is resized by the same operator: ``<x, w> == <B x, pi_resize(w)>``. The
positional embedding is resampled bilinearly (with antialiasing) to the
current patch grid, prefix tokens kept, as FlexiAST does.

* :func:`_resize_matrices`: the cached PI-resize matrices (one per axis).
* :func:`pi_resize`: a kernel ``[out, in, h, w]`` at another patch size.
* :func:`resample_pos_embed`: a positional embedding on another grid.

* :func:`parse_patch_size`: the one parser of patch sizes (``16``,
  ``"16x24"``, ``[16, 24]``).

``ASTEncoder(flexible=...)`` and ``ASTEncoder.set_patch_size`` use these;
``fastast_plugin.weights.convert`` uses them to initialise flexible encoders
from fixed-patch checkpoints and to load FlexiAST checkpoints.

Design: only the resize *matrices* are cached (they are constants); the
kernel and the positional grid are resized from the stored parameters in
every forward, so one kernel and one grid receive the gradients of every
patch size (no stale copies, no unused parameters under DDP). The stored
grid is the one the encoder was built with (its base patch size and
strides: 8 x 64 for FlexiAST's 16/16 on 1024 frames, 12 x 101 for AST's
16/10); every other patch size resamples from it.

Authors
 * fastast developers 2026
"""

import functools
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from speechbrain.utils.logger import get_logger

__all__ = [
    "Size",
    "grid_to_pos_embed",
    "kernel_matrices",
    "parse_patch_size",
    "patch_grid",
    "pi_resize",
    "pos_embed_to_grid",
    "resample_pos_embed",
]

logger = get_logger(__name__)

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")
# Resize matrices are computed once in float64 on the CPU, then cast.
_MATRIX_CACHE_SIZE = 128

Size = int | Sequence[int]


def parse_patch_size(value, name="patch_size", as_pair=True):
    """The one patch-size parser: YAML, command line and code spellings.

    Accepts an int ``16``, a string ``"16"``, ``"16x12"`` or ``"16,12"``
    (frequency x time) and a pair ``(16, 12)`` / ``[16, 12]``.

    Arguments
    ---------
    value : int, str or sequence of int
        ``p`` (square) or ``(p_freq, p_time)`` in any of the forms above.
    name : str
        Argument name for the error message.
    as_pair : bool
        True: always return ``(p_freq, p_time)``. False: a single size stays
        an int, as ``ASTEncoder.set_patch_size`` takes it (an int applies to
        the flexible axes only, e.g. the time axis of a ``flexible="time"``
        encoder, where ``(48, 48)`` would be rejected).

    Returns
    -------
    tuple of int or int
        ``(p_freq, p_time)`` of positive ints (or one int, see ``as_pair``).

    Raises
    ------
    ValueError
        Naming ``name`` and the value for anything else (zero, negative,
        bool, float, three sizes, other text).

    Example
    -------
    >>> parse_patch_size(16), parse_patch_size("16x12"), parse_patch_size([16, 24])
    ((16, 16), (16, 12), (16, 24))
    >>> parse_patch_size("48", as_pair=False), parse_patch_size("16,48", as_pair=False)
    (48, (16, 48))
    """
    items = _split_size(value) if isinstance(value, str) else value
    single = _is_int(items)
    items = [items, items] if single else items
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"{name} must be a positive int or a (freq, time) pair of positive "
            f"ints (e.g. 16, '16x24', '16,24' or [16, 24]), got {value!r}"
        )
    pair = int(pair[0]), int(pair[1])
    return pair[0] if single and not as_pair else pair


def _split_size(text):
    """``"16"`` -> 16, ``"16x24"`` / ``"16,24"`` -> [16, 24]; None if not numbers."""
    parts = text.lower().replace(",", "x").split("x")
    if not all(part.strip().isdigit() for part in parts):
        return None
    numbers_ = [int(part) for part in parts]
    return numbers_[0] if len(numbers_) == 1 else numbers_


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def patch_grid(input_size: tuple[int, int], patch_size, stride):
    """Patch grid of a (freq, time) input for a patch size and stride.

    Arguments
    ---------
    input_size : tuple of int
        ``(mel bands, frames)``.
    patch_size : int or tuple of int
        ``p`` or ``(p_freq, p_time)``.
    stride : int or tuple of int
        ``s`` or ``(s_freq, s_time)``.

    Returns
    -------
    tuple of int
        ``(f_dim, t_dim)``; remainder bands/frames that do not fill a patch
        are dropped, as by a convolution.

    Example
    -------
    >>> patch_grid((128, 1024), 48, 48), patch_grid((128, 1024), 16, 10)
    ((2, 21), (12, 101))
    """
    (fdim, tdim), (pf, pt) = input_size, parse_patch_size(patch_size)
    sf, st = parse_patch_size(stride, "stride")
    if fdim < pf:
        raise ValueError(
            f"patch_size {_show(patch_size)} does not fit an input of {fdim} mel bands"
        )
    if tdim < pt:
        raise ValueError(f"patch_size {_show(patch_size)} does not fit an input of {tdim} frames")
    return (fdim - pf) // sf + 1, (tdim - pt) // st + 1


def _show(size):
    pair = parse_patch_size(size)
    return str(pair[0]) if pair[0] == pair[1] else str(pair)


# ----------------------------------------------------------------------
# Patch kernel: pseudo-inverse resize
# ----------------------------------------------------------------------
def _resize_matrices(
    old_size,
    new_size,
    interpolation="bilinear",
    antialias=False,
    device=None,
    dtype=None,
):
    """The PI-resize matrices of the frequency and time axes.

    ``B`` is the linear resize operator from ``old_size`` to ``new_size``
    patches (``F.interpolate`` with ``align_corners=False``). FlexiViT's
    PI-resize maps a kernel ``w`` to ``pinv(B^T) w``: exact when upsampling
    (``<x, w> = <Bx, w_new>`` for every patch ``x``), the least-squares
    solution when downsampling. ``F.interpolate`` resizes one axis after
    the other, so ``B = B_f (x) B_t`` (Kronecker product) and
    ``pinv(B) = pinv(B_f) (x) pinv(B_t)``: the resize of a kernel slice is
    ``P_f^T @ w @ P_t`` with ``P_f = pinv(B_f)`` and ``P_t = pinv(B_t)``,
    which costs ``h * new_w * (w + new_h)`` instead of
    ``h * w * new_h * new_w`` multiplications per kernel slice (0.08
    instead of 0.9 GFLOP for a 768-channel 16 -> 48 kernel). Each axis matrix is built by resizing
    one-hot basis vectors, computed once per (sizes, interpolation,
    antialias) in float64 on the CPU and cached; its cast to each
    (device, dtype) is cached too. The matrices carry no gradient: apply
    them to the stored kernel in every forward so that gradients reach it.

    Arguments
    ---------
    old_size : int or tuple of int
        ``(h, w)`` of the stored kernel.
    new_size : int or tuple of int
        ``(h, w)`` wanted.
    interpolation : str
        ``F.interpolate`` mode of ``B``: nearest, bilinear, bicubic or area.
    antialias : bool
        Antialiasing in ``B`` (bilinear and bicubic only).
    device : torch.device or str, optional
        Device of the returned matrices (default CPU).
    dtype : torch.dtype, optional
        Their dtype (default float32).

    Returns
    -------
    freq_matrix : torch.Tensor
        ``P_f``, ``[old_h, new_h]`` (the identity for an unchanged axis).
    time_matrix : torch.Tensor
        ``P_t``, ``[old_w, new_w]``.
        Both are shared between callers: do not modify them in place.

    Example
    -------
    >>> p_f, p_t = _resize_matrices(16, (16, 24))
    >>> p_f.shape, p_t.shape, torch.equal(p_f, torch.eye(16))
    (torch.Size([16, 16]), torch.Size([16, 24]), True)
    """
    old_size = parse_patch_size(old_size, "old_size")
    new_size = parse_patch_size(new_size, "new_size")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if antialias and interpolation not in ("bilinear", "bicubic"):
        raise ValueError(
            f"antialias=True needs interpolation 'bilinear' or 'bicubic', got {interpolation!r}"
        )
    device = torch.device(device or "cpu")
    dtype = dtype or torch.float32
    return tuple(
        _cast_matrix(old, new, interpolation, bool(antialias), device, dtype)
        for old, new in zip(old_size, new_size)
    )


@functools.lru_cache(maxsize=_MATRIX_CACHE_SIZE)
def _cast_matrix(old, new, interpolation, antialias, device, dtype):
    return _axis_pinv(old, new, interpolation, antialias).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=_MATRIX_CACHE_SIZE)
def _axis_pinv(old, new, interpolation, antialias):
    """``pinv(B)`` ``[old, new]`` of the 1-D resize ``B`` ``[new, old]``."""
    if old == new:
        return torch.eye(old, dtype=torch.float64)
    # One-hot rows, repeated along a second axis of unchanged size (a size-1
    # axis trips the antialiased kernels), resized along the first axis.
    basis = torch.eye(old, dtype=torch.float64).reshape(old, 1, old, 1)
    basis = basis.expand(old, 1, old, old).contiguous()
    kwargs = {} if interpolation in ("nearest", "area") else {"align_corners": False}
    if antialias:
        kwargs["antialias"] = True
    resized = F.interpolate(basis, size=(new, old), mode=interpolation, **kwargs)
    logger.debug("PI-resize matrix %d -> %d computed", old, new)
    return torch.linalg.pinv(resized[..., 0].reshape(old, new).T)


def pi_resize(
    weight,
    new_size,
    interpolation="bilinear",
    antialias=False,
    matrices=None,
):
    """Pseudo-inverse resize of a patch-embedding kernel (FlexiViT).

    Differentiable in ``weight``: the resize is two matrix products with
    cached constant matrices (see :func:`_resize_matrices`). It runs in
    float32 (float64 for a float64 kernel) with autocast off, and returns
    the kernel's dtype.

    Arguments
    ---------
    weight : torch.Tensor
        Kernel ``[out, in, h, w]``.
    new_size : int or tuple of int
        ``(new_h, new_w)``.
    interpolation : str
        Resize operator (see :func:`_resize_matrices`); FlexiAST and FlexiViT
        use bilinear.
    antialias : bool
        Antialiasing in the resize operator (FlexiAST: off).
    matrices : tuple of torch.Tensor, optional
        The pair from :func:`kernel_matrices` for this kernel and size, kept
        by the caller to skip the cache look-up; looked up again if its
        device or dtype does not suit the kernel.

    Returns
    -------
    torch.Tensor
        ``[out, in, new_h, new_w]``; ``weight`` itself when the size is
        unchanged.

    Example
    -------
    >>> w = torch.randn(8, 1, 16, 16)
    >>> pi_resize(w, 24).shape, pi_resize(w, (16, 8)).shape
    (torch.Size([8, 1, 24, 24]), torch.Size([8, 1, 16, 8]))
    """
    if weight.dim() != 4:
        raise ValueError(
            f"pi_resize expects a kernel [out, in, h, w], got shape {tuple(weight.shape)}"
        )
    old_size = tuple(weight.shape[-2:])
    new_size = parse_patch_size(new_size, "new_size")
    if old_size == new_size:
        return weight
    p_f, p_t = _suitable(weight, new_size, interpolation, antialias, matrices)
    with torch.autocast(weight.device.type, enabled=False):
        resized = p_f.T @ weight.to(p_f.dtype) @ p_t
    return resized.to(weight.dtype)


def kernel_matrices(weight, new_size, interpolation="bilinear", antialias=False):
    """The resize matrices :func:`pi_resize` uses for ``weight``.

    On the kernel's device, in float32 (float64 for a float64 kernel);
    cached. Modules that resize one kernel in every forward keep them.

    Arguments
    ---------
    weight : torch.Tensor
        Kernel ``[out, in, h, w]``.
    new_size : int or tuple of int
        ``(new_h, new_w)``.
    interpolation : str
        Resize operator (see :func:`_resize_matrices`).
    antialias : bool
        Antialiasing in the resize operator.

    Returns
    -------
    tuple of torch.Tensor
        ``([h, new_h], [w, new_w])``.

    Example
    -------
    >>> w = torch.zeros(4, 1, 16, 16, dtype=torch.float64)
    >>> [m.dtype for m in kernel_matrices(w, 8)]
    [torch.float64, torch.float64]
    """
    dtype = _compute_dtype(weight)
    old_size = tuple(weight.shape[-2:])
    return _resize_matrices(old_size, new_size, interpolation, antialias, weight.device, dtype)


def _compute_dtype(weight):
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


def _suitable(weight, new_size, interpolation, antialias, matrices):
    """``matrices`` if they suit ``weight``, else the cached ones."""
    if matrices is not None and all(
        m.device == weight.device and m.dtype == _compute_dtype(weight) for m in matrices
    ):
        return matrices
    return kernel_matrices(weight, new_size, interpolation, antialias)


# ----------------------------------------------------------------------
# Positional embedding
# ----------------------------------------------------------------------
def pos_embed_to_grid(pos_embed, grid, num_prefix_tokens):
    """Split a positional embedding into prefix tokens and a float32 image.

    Arguments
    ---------
    pos_embed : torch.Tensor
        ``[1, num_prefix_tokens + f * t, dim]``, patches frequency-major.
    grid : tuple of int
        ``(f, t)`` grid of the patches.
    num_prefix_tokens : int
        Leading cls/dist tokens.

    Returns
    -------
    prefix : torch.Tensor
        ``[1, num_prefix_tokens, dim]``, unchanged.
    image : torch.Tensor
        ``[1, dim, f, t]`` in float32.

    Example
    -------
    >>> prefix, image = pos_embed_to_grid(torch.zeros(1, 2 + 3 * 4, 8), (3, 4), 2)
    >>> prefix.shape, image.shape
    (torch.Size([1, 2, 8]), torch.Size([1, 8, 3, 4]))
    """
    f_dim, t_dim = grid
    _, n, dim = pos_embed.shape
    if n != num_prefix_tokens + f_dim * t_dim:
        raise ValueError(
            f"pos_embed has {n} tokens, expected {num_prefix_tokens} prefix + "
            f"{f_dim}x{t_dim} grid = {num_prefix_tokens + f_dim * t_dim}"
        )
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    image = patches.float().transpose(1, 2).reshape(1, dim, f_dim, t_dim)
    return prefix, image


def grid_to_pos_embed(prefix, image, dtype):
    """Inverse of :func:`pos_embed_to_grid`.

    Arguments
    ---------
    prefix : torch.Tensor
        ``[1, num_prefix_tokens, dim]``.
    image : torch.Tensor
        ``[1, dim, f, t]``.
    dtype : torch.dtype
        Dtype of the result.

    Returns
    -------
    torch.Tensor
        ``[1, num_prefix_tokens + f * t, dim]``.

    Example
    -------
    >>> pos = torch.randn(1, 2 + 3 * 4, 8)
    >>> torch.equal(grid_to_pos_embed(*pos_embed_to_grid(pos, (3, 4), 2), pos.dtype), pos)
    True
    """
    dim = image.shape[1]
    patches = image.reshape(1, dim, -1).transpose(1, 2)
    return torch.cat([prefix, patches.to(dtype)], dim=1)


def resample_pos_embed(
    pos_embed,
    old_grid,
    new_grid,
    num_prefix_tokens=1,
    interpolation="bilinear",
    antialias=True,
):
    """Resample a positional embedding to another patch grid (FlexiAST's rule).

    The patch part is laid out as a (frequency, time) image and resized
    with ``F.interpolate`` (``align_corners=False``, in float32); prefix
    tokens are kept. Differentiable, so a flexible encoder trains its one
    stored grid through every patch size. (For a different input *length*
    at the same patch geometry, AST cuts or interpolates instead:
    ``fastast_plugin.weights.fit.adapt_pos_embed``.)

    Arguments
    ---------
    pos_embed : torch.Tensor
        ``[1, num_prefix_tokens + old_f * old_t, dim]``.
    old_grid : tuple of int
        ``(f, t)`` grid of ``pos_embed``.
    new_grid : tuple of int
        Target ``(f, t)`` grid.
    num_prefix_tokens : int
        Leading cls/dist tokens, copied unchanged.
    interpolation : str
        ``bilinear`` (FlexiAST) or ``bicubic`` (timm).
    antialias : bool
        Antialiasing when shrinking (FlexiAST: on).

    Returns
    -------
    torch.Tensor
        ``[1, num_prefix_tokens + new_f * new_t, dim]``, same dtype.

    Example
    -------
    >>> pos = torch.randn(1, 1 + 8 * 64, 16)
    >>> resample_pos_embed(pos, (8, 64), (5, 42)).shape
    torch.Size([1, 211, 16])
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")
    old_grid, new_grid = tuple(old_grid), tuple(new_grid)
    prefix, image = pos_embed_to_grid(pos_embed, old_grid, num_prefix_tokens)
    if old_grid != new_grid:
        image = F.interpolate(
            image,
            size=new_grid,
            mode=interpolation,
            align_corners=False,
            antialias=antialias,
        )
    return grid_to_pos_embed(prefix, image, pos_embed.dtype)
