"""Weight averaging of the last N epochs' checkpoints, as AST does on AudioSet.

AST's ``--wa`` (``src/traintest.py``) averages the model weights saved after
epochs ``wa_start`` to ``wa_end`` and evaluates the average: on full
AudioSet epochs 1-5 (all five), on balanced AudioSet epochs 6-25 (the last
20), which is what ``average_last_epochs: 5`` and ``20`` give here.

``AudioClassifierBrain`` keeps the last ``average_last_epochs`` end-of-epoch
checkpoints (its Brain setting); after training,
``fastast_plugin.training.recipe.run_experiment`` calls ``save_averaged_checkpoint``,
which averages the chosen modules' parameters with SpeechBrain's
``average_checkpoints``, loads them into the modules and saves them as one
more checkpoint with meta ``averaged`` (the number of epochs averaged), so
that testing with ``max_key="averaged"`` evaluates the average. It runs on
every DDP rank (SpeechBrain's ``save_checkpoint`` is collective; each rank
reads the same files). A re-run finds the averaged checkpoint of the same
epochs and reuses it.

Authors
 * fastast developers 2026
"""

import functools

import torch
from speechbrain.utils.checkpoints import average_checkpoints
from speechbrain.utils.logger import get_logger

from fastast_plugin.training.brain import unwrap

__all__ = ["AVERAGED_KEY", "save_averaged_checkpoint"]

logger = get_logger(__name__)

AVERAGED_KEY = "averaged"
_DEFAULT_MODULES = ("embedding_model", "classifier")


def _epoch_checkpoints(checkpointer):
    """End-of-epoch training checkpoints (meta ``epoch``, not averaged), by epoch.

    Arguments
    ---------
    checkpointer : Checkpointer
        The recipe's checkpointer.

    Returns
    -------
    list of Checkpoint
        Sorted by ascending ``epoch`` (the newest checkpoint of an epoch
        wins if there are several).
    """
    found = checkpointer.find_checkpoints(
        ckpt_predicate=lambda c: "epoch" in c.meta and AVERAGED_KEY not in c.meta,
        max_num_checkpoints=None,
    )
    by_epoch = {}
    for ckpt in sorted(found, key=lambda c: c.meta.get("unixtime", 0)):
        by_epoch[ckpt.meta["epoch"]] = ckpt
    return [by_epoch[e] for e in sorted(by_epoch)]


def save_averaged_checkpoint(checkpointer, modules, last, names=_DEFAULT_MODULES, meta=None):
    """Average the last ``last`` epochs' weights of ``names``, load them, save them as a checkpoint.

    Arguments
    ---------
    checkpointer : Checkpointer
        Holds the epoch checkpoints and the modules under ``names`` as
        recoverables.
    modules : mapping
        Name to module (the Brain's ``modules``; DDP wrappers are looked
        through), loaded with the average (strict).
    last : int
        Number of most recent epochs to average (all if fewer exist).
    names : tuple of str
        Recoverables to average.
    meta : dict, optional
        More meta for the averaged checkpoint.

    Returns
    -------
    list of int
        The epochs averaged.

    Example
    -------
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> layer = torch.nn.Linear(1, 1, bias=False)
    >>> ckpt = Checkpointer(getfixture("tmp_path"), {"classifier": layer})
    >>> for epoch in (1, 2, 3):
    ...     _ = layer.weight.data.fill_(epoch)
    ...     _ = ckpt.save_checkpoint(meta={"epoch": epoch}, verbosity=0)
    >>> save_averaged_checkpoint(ckpt, {"classifier": layer}, last=2, names=("classifier",))
    [2, 3]
    >>> layer.weight.item(), ckpt.find_checkpoint(max_key="averaged").meta["averaged"]
    (2.5, 2)
    """
    if int(last) != last or last < 1:
        raise ValueError(f"average_last_epochs must be an integer >= 1, got {last}")
    chosen = _epoch_checkpoints(checkpointer)[-int(last) :]
    if not chosen:
        raise ValueError(
            f"no end-of-epoch checkpoints in {checkpointer.checkpoints_dir} to average; "
            "train first (checkpoints with meta 'epoch')"
        )
    epochs = [int(c.meta["epoch"]) for c in chosen]
    existing = checkpointer.find_checkpoints(
        ckpt_predicate=lambda c: c.meta.get("averaged_epochs") == epochs,
        max_num_checkpoints=None,
    )
    loader = functools.partial(torch.load, map_location="cpu", weights_only=True)
    for name in names:
        if name not in checkpointer.recoverables:
            raise ValueError(f"{name!r} is not a recoverable of the checkpointer")
        module = unwrap(modules[name])  # plain keys, also under DDP or --compile
        if existing:
            state = loader(existing[0].paramfiles[name])
        else:
            state = average_checkpoints(chosen, name, parameter_loader=loader)
        module.load_state_dict(state, strict=True)
    if existing:
        logger.info("Reusing the average of epochs %s (%s)", epochs, existing[0].path)
        return epochs
    record = {**(meta or {}), AVERAGED_KEY: len(epochs), "averaged_epochs": epochs}
    record.setdefault("epoch", epochs[-1])
    checkpointer.save_checkpoint(meta=record, end_of_epoch=True, verbosity=20)
    logger.info("Averaged the weights of epochs %s", epochs)
    return epochs
