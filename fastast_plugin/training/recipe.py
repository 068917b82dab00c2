"""What every recipe's ``train.py`` does after preparing its data: fit, test, sweep, export.

A recipe's ``train.py`` is parse arguments -> (in ``ddp_group``) load the
YAML -> create the experiment folder -> prepare the data -> build datasets
-> ``run_experiment``. ``run_experiment`` builds the
``AudioClassifierBrain``, trains it, averages the last epochs' weights when
the Brain setting ``average_last_epochs`` asks for it (AST's weight
averaging, ``fastast_plugin.training.averaging``), tests the chosen checkpoint (the
average, if any), writes the
tested weights (``model_file``) and, when the YAML lists
``test_patch_sizes`` (FlexiAST), evaluates the test set at every patch size
(``fastast_plugin.evaluation.sweep``). The recipes differ only in preparation and YAML.

YAML keys read here (besides the Brain's ``brain_settings``): ``modules``,
``opt_class``, ``checkpointer``, ``epoch_counter``,
``train_dataloader_options``, ``valid_dataloader_options`` (also used for
testing), optional ``model_file`` (with ``label_encoder_file`` and
``multi_label``: beside it go ``test_predictions.csv``, the test stage's
prediction for every clip, and ``export/``, the tested model as an inference
folder), and ``test_patch_sizes`` with ``patch_sweep_file``.

Authors
 * fastast developers 2026
"""

import contextlib
import csv
import dataclasses
import os
from typing import NamedTuple

import ruamel.yaml
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from speechbrain.utils.autocast import AMPConfig
from speechbrain.utils.logger import get_logger
from speechbrain.utils.run_opts import RunOptions

from fastast_plugin.data.dataio import training_labels
from fastast_plugin.data.labels import read_labels
from fastast_plugin.evaluation.sweep import (
    EVAL_COLUMNS,
    evaluate_patch_sizes,
    plot_patch_sweep,
    write_table,
)
from fastast_plugin.inference.export import export_config, export_model
from fastast_plugin.models.ast import ASTClassifier
from fastast_plugin.training.averaging import AVERAGED_KEY, save_averaged_checkpoint
from fastast_plugin.training.brain import AudioClassifierBrain, unwrap
from fastast_plugin.weights.folder import STORED_CONFIG_KEY
from fastast_plugin.weights.resize import parse_patch_size

__all__ = ["ExperimentResult", "ddp_group", "parse_arguments", "prepare_and_load", "run_experiment"]

logger = get_logger(__name__)


def prepare_and_load(hparams_file, overrides, prepare):
    """Prepare a recipe's data, then load its YAML with ``n_classes`` set to the labels found.

    The classifier head is built when the YAML loads, but the number of
    classes is known only once the data is prepared. So the YAML's plain
    values (folders, options; ``!ref`` resolved, nothing built) go to
    ``prepare`` first, on the main process; then the YAML is loaded with
    ``n_classes`` as many as the prepared training manifest has labels
    when the YAML leaves it ``null``. A number that differs raises.

    Arguments
    ---------
    hparams_file : str
        The recipe YAML.
    overrides : str or dict
        Command-line overrides.
    prepare : callable
        ``prepare(settings) -> manifests``: settings is the dict of plain
        YAML values; manifests has a ``"train"`` manifest path.

    Returns
    -------
    hparams : dict
        The loaded YAML.
    overrides : str or dict
        The overrides, with ``n_classes`` added when the YAML left it null
        (give them to ``create_experiment_directory``).
    manifests : dict
        What ``prepare`` returned.

    Example
    -------
    >>> from fastast_plugin.data.dataio import write_manifest
    >>> tmp = getfixture("tmp_path")
    >>> write_manifest({"a": {"label": "yes"}, "b": {"label": "no"}}, str(tmp / "train.json"))
    >>> _ = (tmp / "x.yaml").write_text("folder: !PLACEHOLDER\\nn_classes: null\\n"
    ...                                 "head: !new:torch.nn.Linear [4, !ref <n_classes>]\\n")
    >>> hparams, overrides, _ = prepare_and_load(
    ...     str(tmp / "x.yaml"), f"folder: {tmp}",
    ...     lambda settings: {"train": settings["folder"] + "/train.json"})
    >>> hparams["head"].out_features, overrides.splitlines()[-1]
    (2, 'n_classes: 2')
    """
    settings = _plain_settings(hparams_file, overrides)
    manifests = sb.utils.distributed.run_on_main(prepare, args=[settings])
    found = len(training_labels(manifests["train"]))
    given = settings.get("n_classes")
    if given is None:
        if isinstance(overrides, dict):
            overrides = {**overrides, "n_classes": found}
        else:
            overrides = f"{overrides}\nn_classes: {found}".strip()
    elif given != found:
        raise ValueError(
            f"{manifests['train']} has {found} classes, but n_classes is {given} "
            f"(in {hparams_file} or the command line; null takes the number found)"
        )
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    return hparams, overrides, manifests


def _plain_settings(hparams_file, overrides):
    """The plain top-level values of a YAML, overrides applied, ``!ref`` resolved, nothing built.

    Arguments
    ---------
    hparams_file : str
        The YAML.
    overrides : str or dict
        Overrides.

    Returns
    -------
    dict
        Key to value; values that are objects (``!new:``, ``!name:``, ...)
        are left out.

    Raises
    ------
    ValueError
        A ``!PLACEHOLDER`` that no override fills, named.

    Example
    -------
    >>> path = getfixture("tmp_path") / "x.yaml"
    >>> _ = path.write_text("out: !PLACEHOLDER\\nsave: !ref <out>/save\\nm: !new:torch.nn.ReLU\\n")
    >>> _plain_settings(str(path), "out: results")
    {'out': 'results', 'save': 'results/save'}
    """
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(fin, overrides)
    settings = {}
    for key, value in ruamel.yaml.YAML(typ="rt").load(resolved).items():
        tag = getattr(getattr(value, "tag", None), "value", None)
        if tag == "!PLACEHOLDER":
            raise ValueError(f"{hparams_file}: {key} is !PLACEHOLDER: give --{key}=...")
        if tag is None:
            settings[key] = _plain(value)
    return settings


def _plain(value):
    """Ruamel's round-trip containers as plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_arguments(argv):
    """``speechbrain.parse_arguments`` that keeps short YAML keys such as ``--r`` for the YAML.

    SpeechBrain's argument parser accepts abbreviations of its run options,
    so ``--r=8`` would be read as ``--remove_vector_weight_decay`` (and
    fail), and an abbreviated run option is silently ignored by the Brain
    anyway. Here any ``--name`` that is not exactly a run option but
    abbreviates one is passed to the YAML as an override; a name the YAML
    lacks then raises there.

    Arguments
    ---------
    argv : list of str
        Command-line arguments (without the program name).

    Returns
    -------
    hparams_file : str
        The YAML file.
    run_opts : RunOptions
        SpeechBrain's run options.
    overrides : str
        YAML overrides.

    Example
    -------
    >>> hparams_file, run_opts, overrides = parse_arguments(
    ...     ["x.yaml", "--r=8", "--de", "1", "--device=cpu", "--lr", "0.1"]
    ... )
    >>> overrides.splitlines(), run_opts.device
    (['lr: 0.1', 'r: 8', 'de: 1'], 'cpu')
    """
    options = {f"--{field.name}" for field in dataclasses.fields(RunOptions)}
    kept, extra = [], []
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, has_value, value = arg.partition("=")
        abbreviation = (
            name.startswith("--")
            and name not in options
            and any(option.startswith(name) for option in options)
        )
        if not abbreviation:
            kept.append(arg)
        elif has_value:
            extra.append(f"{name[2:]}: {value}")
        elif i + 1 < len(argv):
            extra.append(f"{name[2:]}: {argv[i + 1]}")
            i += 1
        else:
            raise ValueError(f"Command-line argument {name} needs a value")
        i += 1
    hparams_file, run_opts, overrides = sb.parse_arguments(kept)
    overrides = "\n".join(part for part in (overrides, *extra) if part)
    return hparams_file, run_opts, overrides


@contextlib.contextmanager
def ddp_group(run_opts):
    """SpeechBrain's ``ddp_init_group`` for the ``with`` block, and a clean end to it.

    Under ``torchrun`` the ranks finish at different times: the main process
    still writes the model and export after the others are done. A process
    that exits while its gloo or NCCL group is alive can abort in the
    group's destructor ("terminate called without an active exception",
    SIGABRT), which fails the whole run after it has succeeded. So on
    leaving the block normally every rank waits for the others and then
    destroys the group. After an exception the group is destroyed without
    waiting (the other ranks may never arrive). Without ``torchrun`` nothing
    is initialised and the block just runs.

    Arguments
    ---------
    run_opts : dict
        SpeechBrain's run options (``distributed_backend``).

    Example
    -------
    >>> with ddp_group({"distributed_backend": "gloo"}):
    ...     sb.utils.distributed.if_main_process()
    True
    """
    sb.utils.distributed.ddp_init_group(run_opts)
    try:
        yield
        sb.utils.distributed.ddp_barrier()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class ExperimentResult(NamedTuple):
    """What ``run_experiment`` returns.

    Arguments
    ---------
    brain : AudioClassifierBrain
        The trained Brain (tested checkpoint loaded).
    test_stats : dict
        The test metrics (as in ``test_metrics.json``).
    sweep : list of dict or None
        The patch-size sweep rows, None without ``test_patch_sizes``.

    Example
    -------
    >>> ExperimentResult(None, {"acc": 1.0}, None).test_stats["acc"]
    1.0
    """

    brain: AudioClassifierBrain
    test_stats: dict
    sweep: list | None


def run_experiment(hparams, run_opts, train_set, valid_set, test_set, test_key="acc"):
    """Fit, test the checkpoint with the highest ``test_key``, export, and sweep patch sizes.

    Arguments
    ---------
    hparams : dict
        The loaded YAML (see the module docstring for the keys read).
    run_opts : RunOptions or dict
        SpeechBrain's run options.
    train_set, valid_set, test_set : Dataset
        The splits (``valid_set`` is used for monitoring and checkpoint
        choice; ESC-50 passes its test fold, with ``test_key="epoch"``).
        ``train_set`` may also be a ``DataLoader`` (e.g. WebDataset shards,
        ``fastast_plugin.data.shards``), used as it is.
    test_key : str
        Checkpoint meta key to maximise before testing (``"acc"``: the best
        validation accuracy; ``"mAP"``; ``"epoch"``: the last epoch).
        Ignored when the weights of the last epochs are averaged: the
        average is tested.

    Returns
    -------
    ExperimentResult
        The Brain, its test metrics and the sweep rows.
    """
    brain = AudioClassifierBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    loader_kwargs = hparams["valid_dataloader_options"]
    brain.fit(
        hparams["epoch_counter"],
        train_set,
        valid_set,
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=loader_kwargs,
    )
    average = brain.settings.average_last_epochs
    if average and hparams["checkpointer"] is not None:
        save_averaged_checkpoint(hparams["checkpointer"], brain.modules, average)
        test_key = AVERAGED_KEY
    brain.evaluate(test_set, max_key=test_key, test_loader_kwargs=dict(loader_kwargs))
    if hparams.get("model_file"):
        folder = os.path.dirname(os.path.abspath(hparams["model_file"]))
        labels = _labels(hparams)
        _write_test_predictions(brain, os.path.join(folder, "test_predictions.csv"), labels)
        multi_label = hparams.get("multi_label", False)
        _write_model_file(brain, hparams["model_file"], labels, multi_label)
        _export_tested_model(brain, os.path.join(folder, "export"), labels, multi_label)
    rows = None
    if hparams.get("test_patch_sizes"):
        rows = _sweep_patch_sizes(
            brain,
            test_set,
            hparams["test_patch_sizes"],
            hparams["patch_sweep_file"],
            test_loader_kwargs=dict(loader_kwargs),
        )
    return ExperimentResult(brain, brain.test_stats, rows)


def _write_model_file(brain, path, labels=None, multi_label=False):
    """The Brain's current model as one self-describing file (main process only).

    ``{"model": state dict, "fastast_config": config}``: an ``ASTClassifier``
    state dict (``encoder.*`` and ``head.*`` keys, which
    ``ASTEncoder(init_from=...)`` and the AST teachers read), and the
    exported folder's config (``export.export_config``: architecture,
    strides, run-time patch size and stride, features, labels), with which
    ``from_pretrained`` rebuilds the model as it was. Compiled and DDP
    modules are saved as the plain modules.

    Arguments
    ---------
    brain : AudioClassifierBrain
        With ``embedding_model`` and ``classifier`` modules (and
        ``compute_features``, whose settings are recorded when present).
    path : str
        Output file (written atomically).
    labels : list of str, optional
        Class names (default: indices).
    multi_label : bool
        Sigmoid (AudioSet-style) outputs.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder, ASTHead
    >>> modules = {"embedding_model": ASTEncoder("tiny224", input_tdim=64, depth=1),
    ...            "classifier": ASTHead(192, 2)}
    >>> brain = AudioClassifierBrain(modules, hparams={"brain_settings": {"n_classes": 2}},
    ...                              run_opts={"device": "cpu"})
    >>> path = str(getfixture("tmp_path") / "model.pt")
    >>> _write_model_file(brain, path)
    >>> saved = torch.load(path, weights_only=True)
    >>> sorted(saved["model"])[0], saved["fastast_config"]["encoder"]["input_tdim"]
    ('encoder.blocks.0.attn.proj.bias', 64)
    """
    if not sb.utils.distributed.if_main_process():
        return
    model = _classifier(brain)
    features = getattr(brain.modules, "compute_features", None)
    config = export_config(
        model, None if features is None else unwrap(features), labels, bool(multi_label)
    )
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.partial"
    torch.save({"model": state, STORED_CONFIG_KEY: config}, tmp)
    os.replace(tmp, path)
    logger.info("Model written to %s", path)


def _classifier(brain):
    """The Brain's encoder and head as one ``ASTClassifier``, shared (not copied), unwrapped."""
    return ASTClassifier(unwrap(brain.modules.embedding_model), unwrap(brain.modules.classifier))


def _labels(hparams):
    """Class names from the recipe's ``label_encoder_file``, or None without one."""
    path = hparams.get("label_encoder_file")
    return read_labels(path) if path and os.path.isfile(path) else None


def _write_test_predictions(brain, path, labels=None):
    """The test stage's top-1 prediction of every clip, as ``id,prediction,score`` CSV.

    Collective under DDP (every rank's clips are gathered); the main process
    writes the file. ``score`` is the top class's logit.

    Arguments
    ---------
    brain : AudioClassifierBrain
        After ``evaluate``: its ``stats`` hold the test clips.
    path : str
        The CSV file.
    labels : list of str, optional
        Class names (default: indices).
    """
    ids, scores, _, _ = brain.stats.gather()
    if not sb.utils.distributed.if_main_process() or not ids:
        return
    best, index = scores.float().max(-1)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "prediction", "score"])
        for clip, i, value in zip(ids, index.tolist(), best.tolist()):
            writer.writerow([clip, labels[i] if labels else i, f"{value:.6g}"])


def _export_tested_model(brain, folder, labels=None, multi_label=False):
    """Write the tested model as an inference folder (main process only).

    ``fastast classify`` and ``AudioClassifier.from_hparams`` load that
    folder; ``fastast export <output_folder> OUT --r 16`` re-exports it with
    other run-time settings.

    Arguments
    ---------
    brain : AudioClassifierBrain
        With ``compute_features``, ``embedding_model`` and ``classifier``.
    folder : str
        The folder to write.
    labels : list of str, optional
        Class names (default: indices).
    multi_label : bool
        Sigmoid (AudioSet-style) outputs.
    """
    if not sb.utils.distributed.if_main_process():
        return
    model = _classifier(brain)
    features = unwrap(brain.modules.compute_features)
    export_model(model, folder, features, labels, bool(multi_label))


def _sweep_patch_sizes(brain, test_set, patch_sizes, output_stem=None, test_loader_kwargs=None):
    """Test metrics and throughput of the Brain's current weights at every patch size.

    Features of every test batch are computed once and the encoder and head
    run on them at each size in turn (``fastast_plugin.evaluation.sweep``; clips/s
    times that forward only), at the Brain's ``eval_precision``. Call it
    after ``evaluate`` (whose checkpoint is then loaded). Runs on the main
    process only (the others wait); in debug mode on ``debug_batches``
    batches. The encoder's patch size is restored afterwards.

    Arguments
    ---------
    brain : AudioClassifierBrain
        The trained Brain.
    test_set : Dataset or DataLoader
        The test data.
    patch_sizes : list
        Sizes (``flexi.parse_patch_size`` forms); the encoder must be
        flexible unless only its base size is asked.
    output_stem : str, optional
        Writes ``<stem>.csv``, ``<stem>.md`` and (with matplotlib)
        ``<stem>.png``.
    test_loader_kwargs : dict, optional
        DataLoader arguments (batch size, workers).

    Returns
    -------
    list of dict
        One row per patch size (``fastast_plugin.evaluation.sweep.EVAL_COLUMNS``),
        broadcast to every process.

    Example
    -------
    >>> from fastast_plugin.models.ast import ASTEncoder, ASTHead
    >>> from fastast_plugin.models.features import KaldiFbank
    >>> modules = {
    ...     "compute_features": KaldiFbank(target_length=64),
    ...     "embedding_model": ASTEncoder("tiny224", input_tdim=64, depth=1,
    ...                                   fstride=16, tstride=16, flexible="both"),
    ...     "classifier": ASTHead(192, 2),
    ... }
    >>> brain = AudioClassifierBrain(
    ...     modules, hparams={"brain_settings": {"n_classes": 2}}, run_opts={"device": "cpu"}
    ... )
    >>> data = sb.dataio.dataset.DynamicItemDataset(
    ...     {f"c{i}": {"sig": torch.randn(8000), "label_encoded": torch.tensor([i % 2])}
    ...      for i in range(4)},
    ...     output_keys=["id", "sig", "label_encoded"],
    ... )
    >>> rows = _sweep_patch_sizes(brain, data, [16, 32], test_loader_kwargs={"batch_size": 2})
    >>> [(row["patch_size"], row["tokens"], row["clips"]) for row in rows]
    [('16', 34, 4), ('32', 10, 4)]
    """
    sizes = [parse_patch_size(size, "test_patch_sizes", as_pair=False) for size in patch_sizes]
    if not sizes:
        raise ValueError("test_patch_sizes must hold at least one patch size, got []")
    encoder = unwrap(brain.modules.embedding_model)
    if getattr(encoder, "flexible", "none") == "none":
        base = tuple(encoder.patch_embed.base_patch_size)
        other = [s for s in sizes if parse_patch_size(s) != base]
        if other:
            raise ValueError(
                f"test_patch_sizes {other} differ from the base patch {base} of "
                "an encoder with flexible='none'"
            )
    return sb.utils.distributed.run_on_main(
        _sweep_on_main, args=[brain, test_set, sizes, output_stem, test_loader_kwargs or {}]
    )


def _sweep_on_main(brain, test_set, sizes, output_stem, loader_kwargs):
    if isinstance(test_set, torch.utils.data.DataLoader):
        loader = test_set
    else:
        loader = sb.dataio.dataloader.make_dataloader(test_set, **loader_kwargs)
    model = _classifier(brain)
    brain.modules.eval()
    dtype = AMPConfig.from_name(brain.eval_precision).dtype
    logger.info("Patch-size sweep over %s", ", ".join(map(str, sizes)))
    rows = evaluate_patch_sizes(
        model,
        _feature_batches(brain, loader, brain.debug_batches if brain.debug else None),
        sizes,
        device=brain.device,
        dtype=None if dtype == torch.float32 else dtype,
    )
    if output_stem:
        csv_path, md_path = write_table(rows, EVAL_COLUMNS, output_stem)
        try:
            plot_patch_sweep(rows, output_stem + ".png")
        except ImportError:
            logger.warning("matplotlib is not installed: no plot %s.png", output_stem)
        with open(md_path, encoding="utf-8") as f:
            logger.info("Patch-size sweep (%s):\n%s", csv_path, f.read())
    return rows


def _feature_batches(brain, loader, limit):
    """``(ids, features, targets on the CPU)`` per test batch, features from the Brain's front-end."""
    for i, batch in enumerate(loader):
        if limit is not None and i >= limit:
            break
        batch = batch.to(brain.device)
        wavs, wav_lens = batch.sig
        with torch.no_grad():
            feats = brain.modules.compute_features(wavs, wav_lens)
        yield batch.id, feats, brain.targets(batch).cpu()
