"""Inputs of any length: frame arithmetic, padding masks and per-length runs.

What ``ASTEncoder`` does with the time axis, as functions on tensors and
ints (the encoder calls them with its patch geometry, as ToMe's merge
functions are called by its blocks):

* ``length_mode`` ``"pad"`` pads or crops features to the model's input,
  as AST does (``fit_frames``); ``"native"`` runs them at their own length
  (``check_frames`` bounds it).
* ``clip_frames`` turns SpeechBrain's relative lengths into each clip's
  frames, the patch columns they fill following the convolution
  (``time_columns``, ``frames_for_columns``).
* A batch of clips of different lengths runs either in one pass with its
  padding masked (``padding_mask``, then ``real_tokens_first``) or, when
  tokens merge, one pass per length (``length_groups``, then
  ``scatter_runs``). README, "Cost of variable lengths", compares them.

Authors
 * fastast developers 2026
"""

import torch
import torch.nn.functional as F

from fastast_plugin.models.layers import MergeState

__all__ = [
    "LENGTH_MODES",
    "check_frames",
    "clip_frames",
    "fit_frames",
    "frames_for_columns",
    "length_groups",
    "padding_mask",
    "real_tokens_first",
    "scatter_runs",
    "time_columns",
]

LENGTH_MODES = ("pad", "native")


def time_columns(frames, patch, stride):
    """Patch columns that ``frames`` frames fill (as the convolution).

    Arguments
    ---------
    frames : int
        Frames of the input.
    patch : int
        Patch width along time.
    stride : int
        Patch stride along time.

    Returns
    -------
    int
        Number of patch columns.

    Example
    -------
    >>> time_columns(1024, 16, 10), time_columns(100, 16, 10)
    (101, 9)
    """
    return (frames - patch) // stride + 1


def frames_for_columns(columns, patch, stride):
    """Fewest frames that give ``columns`` patch columns.

    Arguments
    ---------
    columns : int
        Patch columns.
    patch : int
        Patch width along time.
    stride : int
        Patch stride along time.

    Returns
    -------
    int
        Frames.

    Example
    -------
    >>> frames_for_columns(9, 16, 10), time_columns(96, 16, 10)
    (96, 9)
    """
    return (columns - 1) * stride + patch


def check_frames(frames, mode, min_frames, input_tdim):
    """Raise unless an input of ``frames`` frames can run in ``mode``.

    ``"pad"`` takes any length (padded or cropped to ``input_tdim``, which
    holds a patch); ``"native"`` needs one patch and at most the model's
    positional grid.

    Arguments
    ---------
    frames : int
        Frames of the input.
    mode : str
        ``"pad"`` or ``"native"``.
    min_frames : int
        Frames of one patch.
    input_tdim : int
        Frames of the model's input.

    Example
    -------
    >>> check_frames(2000, "pad", 16, 1024)
    >>> check_frames(2000, "native", 16, 1024)
    Traceback (most recent call last):
    ...
    ValueError: an input of 2000 frames is longer than this model's positional grid: length_mode='native' takes at most input_tdim=1024 frames; window longer audio or use length_mode='pad' to crop it
    """  # noqa: E501
    if mode == "pad":
        return
    if frames < min_frames:
        raise ValueError(
            f"an input of {frames} frames is shorter than one patch: "
            f"ASTEncoder needs at least {min_frames} frames"
        )
    if frames > input_tdim:
        raise ValueError(
            f"an input of {frames} frames is longer than this model's "
            f"positional grid: length_mode='native' takes at most "
            f"input_tdim={input_tdim} frames; window longer audio or "
            "use length_mode='pad' to crop it"
        )


def fit_frames(feats, mode, input_tdim):
    """Features ``[batch, time, freq]`` with the time the length mode runs.

    ``"pad"``: zero-padded at the end or cropped to ``input_tdim`` frames
    (AST); ``"native"``: unchanged.

    Arguments
    ---------
    feats : torch.Tensor
        Features ``[batch, time, freq]``.
    mode : str
        ``"pad"`` or ``"native"``.
    input_tdim : int
        Frames of the model's input.

    Returns
    -------
    torch.Tensor
        The features the blocks run on.

    Example
    -------
    >>> fit_frames(torch.ones(1, 3, 2), "pad", 4)[0, :, 0].tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    frames = feats.shape[1]
    if mode == "native" or frames == input_tdim:
        return feats
    if frames > input_tdim:
        return feats[:, :input_tdim]
    return F.pad(feats, (0, 0, 0, input_tdim - frames))


def clip_frames(feats, lengths, min_frames):
    """Frames of each clip of a batch, or None when no clip is padded.

    Arguments
    ---------
    feats : torch.Tensor
        Features of the batch ``[batch, time, freq]``.
    lengths : torch.Tensor or None
        Relative lengths ``[batch]`` (SpeechBrain).
    min_frames : int
        Fewest frames a clip may have (one patch).

    Returns
    -------
    list of int or None
        ``round(length * time)`` per clip (SpeechBrain's relative to
        absolute rule), None when ``lengths`` is None or every clip fills
        the batch.

    Example
    -------
    >>> feats = torch.zeros(2, 64, 128)
    >>> clip_frames(feats, torch.tensor([0.5, 1.0]), 16), clip_frames(feats, torch.ones(2), 16)
    ([32, 64], None)
    """
    if lengths is None:
        return None
    total = feats.shape[1]
    if lengths.shape != (feats.shape[0],):
        raise ValueError(
            f"lengths must be [batch] = [{feats.shape[0]}] relative "
            f"lengths, got shape {tuple(lengths.shape)}"
        )
    # SpeechBrain's relative -> absolute rule (round), within the input.
    frames = (lengths.double() * total).round().clamp(max=total).long().tolist()
    if all(n == total for n in frames):
        return None
    for i, n in enumerate(frames):
        if n < min_frames:
            raise ValueError(
                f"clip {i} of the batch has {n} frames (relative length "
                f"{float(lengths[i]):.4g}), shorter than one patch: "
                f"ASTEncoder needs at least {min_frames} frames (pad short clips with "
                f"silence first: fastast_plugin.models.features.batch_features(..., "
                f"min_samples=min_clip_samples(features, encoder)), as the Brain does)"
            )
    return frames


def padding_mask(columns, f_dim, num_prefix_tokens, device=None):
    """Real tokens of a batch cut to its longest clip, frequency-major.

    Arguments
    ---------
    columns : list of int
        Patch columns of each clip.
    f_dim : int
        Patch rows (frequency).
    num_prefix_tokens : int
        Prefix tokens (cls, dist) before the patches; always real.
    device : torch.device, optional
        Device of the mask.

    Returns
    -------
    torch.Tensor
        Bool ``[batch, num_prefix_tokens + f_dim * max(columns)]``, False
        for padding patches.

    Example
    -------
    >>> padding_mask([1, 2], f_dim=2, num_prefix_tokens=1).int().tolist()
    [[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]]
    """
    cols = torch.tensor(columns, device=device)
    real = torch.arange(max(columns), device=device) < cols.unsqueeze(1)
    prefix = real.new_ones(len(columns), num_prefix_tokens)
    return torch.cat([prefix, real.repeat(1, f_dim)], dim=1)


def real_tokens_first(tokens, valid):
    """Each row's real tokens first, in order, then its padding, zeroed.

    The layout of each clip run alone, followed by zeros.

    Arguments
    ---------
    tokens : torch.Tensor
        ``[batch, tokens, dim]``.
    valid : torch.Tensor
        Bool ``[batch, tokens]``, False for padding.

    Returns
    -------
    tokens : torch.Tensor
        ``[batch, tokens, dim]`` reordered, padding zeroed.
    valid : torch.Tensor
        The mask in the same order.

    Example
    -------
    >>> tokens = torch.arange(4.0).view(1, 4, 1)
    >>> out, valid = real_tokens_first(tokens, torch.tensor([[True, False, True, True]]))
    >>> out.flatten().tolist(), valid.tolist()
    ([0.0, 2.0, 3.0, 0.0], [[True, True, True, False]])
    """
    order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)
    valid = valid.gather(1, order)
    tokens = tokens.gather(1, order.unsqueeze(-1).expand_as(tokens))
    return tokens * valid.unsqueeze(-1), valid


def length_groups(columns):
    """Rows of each distinct clip length, shortest first.

    Arguments
    ---------
    columns : list of int
        Patch columns of each clip.

    Returns
    -------
    list of (int, list of int)
        ``(columns, rows)`` per distinct length.

    Example
    -------
    >>> length_groups([3, 1, 3])
    [(1, [1]), (3, [0, 2])]
    """
    groups = {}
    for i, c in enumerate(columns):
        groups.setdefault(c, []).append(i)
    return sorted(groups.items())


def scatter_runs(runs, batch):
    """Put the tokens and states of each length's run back in batch order.

    Arguments
    ---------
    runs : list of (torch.Tensor, torch.Tensor, MergeState)
        ``(rows, tokens, state)`` per run: the batch rows it holds, its
        tokens ``[rows, n, dim]`` and its merge state.
    batch : int
        Rows of the batch.

    Returns
    -------
    tokens : torch.Tensor
        ``[batch, longest, dim]``, each row's tokens first, zeros after.
    state : MergeState
        Sizes (None if no run merged; ones for a run that did not), sources
        (None unless a run traced them; identity for one that did not),
        each row's own, and ``valid`` marking the real tokens.

    Example
    -------
    >>> runs = [(torch.tensor([1]), torch.ones(1, 2, 3), MergeState()),
    ...         (torch.tensor([0]), torch.ones(1, 3, 3), MergeState())]
    >>> tokens, state = scatter_runs(runs, 2)
    >>> tokens.shape, state.valid.sum(1).tolist(), state.size
    (torch.Size([2, 3, 3]), [3, 2], None)
    """
    width = max(tokens.shape[1] for _, tokens, _ in runs)
    first = runs[0][1]
    tokens = first.new_zeros(batch, width, first.shape[-1])
    valid = torch.zeros(batch, width, dtype=torch.bool, device=first.device)
    merged = any(state.size is not None for _, _, state in runs)
    size = first.new_zeros(batch, width, 1) if merged else None
    traced = any(state.source is not None for _, _, state in runs)
    inputs = max(_run_inputs(run) for run in runs)
    source = first.new_zeros(batch, width, inputs) if traced else None
    for index, run_tokens, state in runs:
        n = run_tokens.shape[1]
        tokens[index, :n] = run_tokens
        valid[index, :n] = True
        if size is not None:
            run_size = state.size
            if run_size is None:  # nothing merged at this length
                run_size = run_tokens.new_ones(len(index), n, 1)
            size[index, :n] = run_size.to(size.dtype)
        if source is not None:
            run_source = state.source
            if run_source is None:
                eye = torch.eye(n, device=first.device)
                run_source = eye.expand(len(index), n, n)
            size_in = run_source.shape[-1]
            source[index, :n, :size_in] = run_source.to(source.dtype)
    return tokens, MergeState(size, source, valid)


def _run_inputs(run):
    """Input tokens of a run: the source's width, else its token count."""
    _, tokens, state = run
    return tokens.shape[1] if state.source is None else state.source.shape[-1]
