"""Pictures of token merging: which patches each final token holds.

``python -m fastast_plugin.evaluation.visualize AUDIO.wav --r 16 --out x.png`` (``fastast
visualize ...``) draws the clip's spectrogram with every final token's group of patches in its own
colour, outlined, next to the number of tokens after each block.

Authors
 * fastast developers 2026
"""

import argparse

import numpy as np
import torch
from speechbrain.utils.logger import get_logger

from fastast_plugin.cli_options import add_option
from fastast_plugin.data.audio import load_audio
from fastast_plugin.evaluation.plotting import pyplot, save_figure
from fastast_plugin.models.ast import ASTEncoder
from fastast_plugin.models.features import AUDIOSET_MEAN, AUDIOSET_STD, KaldiFbank, num_frames
from fastast_plugin.models.merge import token_counts
from fastast_plugin.models.pretrained import from_pretrained
from fastast_plugin.weights.folder import read_export_config

__all__ = ["main"]

logger = get_logger(__name__)


def _patch_groups(source, grid_size, num_prefix_tokens):
    """Index of the final token that holds each patch of the grid.

    Arguments
    ---------
    source : torch.Tensor
        ``[final_tokens, input_tokens]`` 0/1 map for one clip, prefix tokens
        included (as ``ASTEncoder.forward_tokens`` returns with
        ``trace_source=True``).
    grid_size : tuple of int
        Patch grid ``(f_dim, t_dim)``.
    num_prefix_tokens : int
        Leading cls/dist tokens, which hold no patch.

    Returns
    -------
    numpy.ndarray
        ``[f_dim, t_dim]`` integer map, numbered from 0 over the final patch
        tokens in their order.

    Example
    -------
    >>> source = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 1]])
    >>> _patch_groups(source, (2, 2), 1)
    array([[0, 1],
           [0, 1]])
    """
    patches = source[num_prefix_tokens:, num_prefix_tokens:]
    if patches.shape[1] != grid_size[0] * grid_size[1]:
        raise ValueError(
            f"source covers {patches.shape[1]} patches, grid {grid_size} has "
            f"{grid_size[0] * grid_size[1]}"
        )
    return patches.argmax(0).reshape(grid_size).cpu().numpy()


def _group_image(groups, encoder, shape):
    """Paint each patch's stride cell with its group index (-1 = no patch)."""
    fstride, tstride = encoder.patch_embed.proj.stride
    image = np.full(shape, -1)
    for f in range(groups.shape[0]):
        for t in range(groups.shape[1]):
            image[f * fstride : (f + 1) * fstride, t * tstride : (t + 1) * tstride] = groups[f, t]
    return image


def _plot_token_groups(feats, encoder, path):
    """Draw one clip's spectrogram with its merged-token groups.

    Arguments
    ---------
    feats : torch.Tensor
        Features ``[time, freq]`` of one clip (``encoder.input_tdim`` frames).
    encoder : ASTEncoder
        Encoder with the merge setting to show; source tracing is switched on
        for this call only.
    path : str
        PNG file to write.

    Returns
    -------
    numpy.ndarray
        The ``[f_dim, t_dim]`` group map that was drawn.
    """
    plt = pyplot()
    tracing = encoder.trace_source
    encoder.trace_source = True
    try:
        with torch.no_grad():
            _, state = encoder.eval().forward_tokens(feats[None])
    finally:
        encoder.trace_source = tracing
    num_tokens = encoder.num_tokens
    if state.source is None:  # nothing merged: every patch is its own token
        state = state._replace(source=torch.eye(num_tokens)[None])
    groups = _patch_groups(state.source[0], encoder.grid_size, encoder.num_prefix_tokens)
    spec = feats.T.cpu().numpy()
    image = _group_image(groups, encoder, spec.shape)
    counts = token_counts(num_tokens, encoder.merge_schedule(), encoder.num_prefix_tokens)

    fig, (ax_spec, ax_count) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 1]}
    )
    ax_spec.imshow(spec, origin="lower", aspect="auto", cmap="gray")
    rng = np.random.default_rng(0)
    colours = rng.random((groups.max() + 1, 3))
    overlay = np.zeros(spec.shape + (4,))
    covered = image >= 0
    overlay[covered, :3] = colours[image[covered]]
    overlay[covered, 3] = 0.45
    ax_spec.imshow(overlay, origin="lower", aspect="auto")
    boundary = np.zeros(spec.shape, bool)
    boundary[1:] |= image[1:] != image[:-1]
    boundary[:, 1:] |= image[:, 1:] != image[:, :-1]
    ax_spec.contour(boundary & covered, levels=[0.5], colors="white", linewidths=0.4)
    ax_spec.set_xlabel("frame")
    ax_spec.set_ylabel("mel band")
    ax_spec.set_title(f"{len(np.unique(groups))} patch tokens after merging")
    ax_count.plot(range(len(counts) + 1), [num_tokens] + counts, "o-")
    ax_count.set_xlabel("block")
    ax_count.set_ylabel("tokens")
    ax_count.set_ylim(bottom=0)
    save_figure(fig, path)
    return groups


def main(argv=None, prog=None):
    """Command line: ``python -m fastast_plugin.evaluation.visualize AUDIO --out x.png``.

    Arguments
    ---------
    argv : list of str, optional
        E.g. ``["clip.wav", "--r", "16", "--out", "x.png"]`` (default
        ``sys.argv[1:]``).
    prog : str, optional
        Name in the usage line (``fastast visualize`` when run by ``fastast``).

    Returns
    -------
    numpy.ndarray
        The ``[f_dim, t_dim]`` group map that was drawn.
    """
    parser = argparse.ArgumentParser(
        prog=prog or "python -m fastast_plugin.evaluation.visualize",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("audio")
    parser.add_argument("--out", required=True, help="PNG to write")
    add_option(parser, "r", default=16)
    add_option(parser, "keep_ratio")
    parser.add_argument("--checkpoint", help="AST checkpoint (default: random weights)")
    parser.add_argument("--model-size", default="base384")
    parser.add_argument("--frames", type=int, help="input frames (default: clip length)")
    parser.add_argument(
        "--mean", type=float, help="feature mean (an exported folder's, else AudioSet's)"
    )
    parser.add_argument(
        "--std", type=float, help="feature std (an exported folder's, else AudioSet's)"
    )
    args = parser.parse_args(argv)
    exported = read_export_config(args.checkpoint) if args.checkpoint else None
    stats = exported["features"] if exported else {"mean": AUDIOSET_MEAN, "std": AUDIOSET_STD}
    mean = stats["mean"] if args.mean is None else args.mean
    std = stats["std"] if args.std is None else args.std

    wav = load_audio(args.audio)
    frames = args.frames or num_frames(len(wav))
    if args.checkpoint:
        encoder = from_pretrained(args.checkpoint, input_tdim=frames).encoder
    else:
        logger.warning("No --checkpoint: random weights merge arbitrary patches")
        encoder = ASTEncoder(args.model_size, input_tdim=frames)
    encoder.set_merge(r=args.r, keep_ratio=args.keep_ratio)
    fbank = KaldiFbank(target_length=frames, mean=mean, std=std)
    feats = fbank(wav[None])[0]
    groups = _plot_token_groups(feats, encoder, args.out)
    print(f"wrote {args.out}: {len(np.unique(groups))} patch tokens")
    return groups


if __name__ == "__main__":
    main()
