"""Pictures of token merging: which patches each final token holds.

``python -m fastast_plugin.visualize AUDIO.wav --r 16 --out x.png`` draws the
clip's spectrogram with every final token's group of patches in its own
colour, outlined, next to the number of tokens after each block.

Authors
 * fastast developers 2026
"""

import argparse

import numpy as np
import torch
from speechbrain.dataio import audio_io
from speechbrain.utils.logger import get_logger

from fastast_plugin.features import KaldiFbank
from fastast_plugin.merge import token_counts

logger = get_logger(__name__)


def patch_groups(source, grid_size, num_prefix_tokens):
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
    >>> patch_groups(source, (2, 2), 1)
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


def plot_token_groups(feats, encoder, path):
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    groups = patch_groups(state.source[0], encoder.grid_size, encoder.num_prefix_tokens)
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return groups


def plot_tokens_per_block(encoder, settings, path):
    """Tokens left after each block for several merge settings.

    Arguments
    ---------
    encoder : ASTEncoder
        Encoder whose grid and depth are used (its setting is restored).
    settings : list of dict
        Keyword arguments for ``encoder.set_merge``, e.g. ``{"r": 16}``.
    path : str
        PNG file to write.

    Returns
    -------
    dict
        Label to token counts per block.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = {"r": encoder.r, "keep_ratio": encoder.keep_ratio}
    curves = {}
    for setting in settings:
        encoder.set_merge(**setting)
        counts = token_counts(
            encoder.num_tokens, encoder.merge_schedule(), encoder.num_prefix_tokens
        )
        label = ", ".join(f"{k}={v}" for k, v in setting.items())
        curves[label] = [encoder.num_tokens] + counts
    encoder.set_merge(**saved)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, counts in curves.items():
        ax.plot(range(len(counts)), counts, "o-", label=label)
    ax.set_xlabel("block")
    ax.set_ylabel("tokens")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return curves


def load_clip(path, sample_rate=16000):
    """Read a mono clip at ``sample_rate``, failing clearly on bad files.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Rate the model expects; other rates are resampled.

    Returns
    -------
    torch.Tensor
        Waveform ``[samples]``.
    """
    try:
        wav, rate = audio_io.load(path)
    except Exception as error:
        raise ValueError(f"Cannot read audio file {path!r}: {error}") from error
    if wav.numel() == 0:
        raise ValueError(f"Audio file {path!r} is empty")
    if wav.shape[0] > 1:
        logger.info("%s has %d channels; averaging them", path, wav.shape[0])
    wav = wav.float().mean(0)
    if rate != sample_rate:
        import torchaudio

        logger.info("Resampling %s from %d Hz to %d Hz", path, rate, sample_rate)
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    return wav


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--keep-ratio", type=float)
    parser.add_argument("--checkpoint", help="AST checkpoint (default: random weights)")
    parser.add_argument("--model-size", default="base384")
    parser.add_argument("--frames", type=int, help="input frames (default: clip length)")
    parser.add_argument("--mean", type=float, default=-4.2677393)
    parser.add_argument("--std", type=float, default=4.5689974)
    args = parser.parse_args(argv)

    from fastast_plugin.ast import ASTEncoder
    from fastast_plugin.checkpoints import from_pretrained
    from fastast_plugin.features import num_frames

    wav = load_clip(args.audio)
    frames = args.frames or num_frames(len(wav))
    if args.checkpoint:
        encoder = from_pretrained(args.checkpoint, input_tdim=frames).encoder
    else:
        logger.warning("No --checkpoint: random weights merge arbitrary patches")
        encoder = ASTEncoder(args.model_size, input_tdim=frames)
    encoder.set_merge(r=args.r, keep_ratio=args.keep_ratio)
    fbank = KaldiFbank(target_length=frames, mean=args.mean, std=args.std)
    feats = fbank(wav[None])[0]
    groups = plot_token_groups(feats, encoder, args.out)
    print(f"wrote {args.out}: {len(np.unique(groups))} patch tokens")


if __name__ == "__main__":
    main()
