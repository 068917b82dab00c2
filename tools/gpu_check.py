#!/usr/bin/env python3
"""The GPU check (issue 19): device tests, GPU table, recipe training and inference, one report.

A repository script, run through ``tools/gpu_check.sh`` (which brings
SpeechBrain's wheels onto a machine that lacks them)::

    tools/gpu_check.sh --device cuda --size full --out results/gpu_check
    tools/gpu_check.sh --device cpu --size tiny --out /tmp/check   # the CPU path, in seconds

Parts, each timed; a failure is recorded and the other parts still run;
the exit status is 1 when any part failed or could not run:

1. ``tests``: the suite's tests that take the ``device`` fixture, on the
   device (``pytest --device D --device-tests-only``).
2. ``bench``: ``python -m fastast_plugin.evaluation.bench --gpu-table``
   (tiny: the overrides of ``test_bench``'s tiny end-to-end run).
3. ``train``: FSDD laid out by ``tools/fsdd_layout.py`` and the Speech
   Commands recipe (``train.py hparams/tome_ast.yaml``, random init) for a
   fixed number of steps (``--debug``), at r = 0 and ``--keep_ratio=0.85``,
   eager and (full size) compiled, bf16 autocast. Each run goes through
   ``probe-train``, which times every ``fit_batch`` (its loss comes back on
   the CPU, so the step has finished) and reads the peak CUDA memory; the
   written ``model.pt`` and ``export/`` are then loaded and must agree.
4. ``classify``: ``fastast classify`` of the laid-out folder with the
   exported model of the eager r = 0 run, r = 0 and keep 0.85, fp32 and
   bf16, timed around ``classify_files`` by ``probe-classify``.

Written to ``--out`` (default ``$OUT``): ``gpu_check.md`` (the summary
tables, with date, device and command lines), ``gpu_check.json`` (every
figure) and ``logs.tar.gz`` (every command's output, the recipe logs and
the benchmark's JSON). Large files (data, checkpoints) stay in ``--work``.

Authors
 * fastast developers 2026
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import runpy
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

TOOL = Path(__file__).resolve()
REPO = TOOL.parents[1]
RECIPE = REPO / "recipes" / "SpeechCommands"
PARTS = ("tests", "bench", "train", "classify")
FSDD_CANDIDATES = (
    REPO / ".fsdd" / "recordings",  # a copy carried in the tree (ignored by git)
    REPO / "shared" / "data" / "fsdd" / "recordings",
    REPO.parent / "shared" / "data" / "fsdd" / "recordings",
)
FSDD_NAME = re.compile(r"^\d_[A-Za-z]+_(\d+)\.wav$")
KEEP_RATIO = 0.85
LOG_TAIL = 1500  # characters of a failed command's output kept in the report


@dataclasses.dataclass(frozen=True)
class Size:
    """What one ``--size`` runs.

    Arguments
    ---------
    tests : tuple
        Paths given to pytest.
    bench : tuple
        Arguments added to ``--gpu-table`` (its preset is the full table).
    model : tuple
        Recipe overrides of the model and loading.
    batch_size : int
        Training batch.
    steps : int
        Training steps per run (``--debug_batches``).
    compiled : tuple of bool
        Eager (False) and/or compiled (True) training runs.
    takes : int or None
        Keep FSDD takes below this number (None: every file).
    classify_batch : int
        ``fastast classify --batch-size``.
    deadline_s : float
        Seconds after which the remaining steps are not started.
    timeouts : dict
        Seconds per kind of step.
    """

    tests: tuple
    bench: tuple
    model: tuple
    batch_size: int
    steps: int
    compiled: tuple
    takes: int
    classify_batch: int
    deadline_s: float
    timeouts: dict


SIZES = {
    "full": Size(
        tests=("tests",),
        bench=(),
        model=("--model_size=base384", "--num_workers=8"),
        batch_size=128,
        steps=16,
        compiled=(False, True),
        takes=None,
        classify_batch=64,
        deadline_s=420,
        timeouts={
            "tests": 150,
            "bench": 150,
            "layout": 120,
            "train": 120,
            "compiled": 200,
            "classify": 120,
        },
    ),
    "tiny": Size(
        tests=("tests/unit/training/test_losses.py",),
        bench=(
            "--model-size",
            "tiny224",
            "--frames",
            "64",
            "--batch",
            "2",
            "--runs",
            "1",
            "--dtypes",
            "bf16",
            "--batches",
            "1",
            "--seconds",
            "0.5",
        ),
        model=(
            "--model_size=tiny224",
            "--depth=2",
            "--fstride=16",
            "--tstride=16",
            "--num_workers=0",
            "--lr=0.001",  # a visible fall of the loss in a few steps
        ),
        batch_size=8,
        steps=6,
        compiled=(False,),
        takes=16,
        classify_batch=8,
        deadline_s=600,
        timeouts={
            "tests": 120,
            "bench": 120,
            "layout": 60,
            "train": 120,
            "compiled": 300,
            "classify": 60,
        },
    ),
}


# ----------------------------------------------------------------------
# Probes: a recipe or command run in this process with timers around it
# ----------------------------------------------------------------------
def _cuda_device(device):
    """The torch device to read memory from, or None off CUDA."""
    import torch

    return torch.device(device) if str(device).startswith("cuda") else None


def probe_train(record_path, output_folder, clip, *argv):
    """Run a recipe's ``train.py`` (from its folder) with every training step timed, then check its outputs.

    ``AudioClassifierBrain.fit_batch`` returns the loss on the CPU, so the
    step has finished when it returns. The record: per step its seconds,
    clips, loss and end time; the peak CUDA memory of training (reset at
    the first step, read after each); then ``export_vs_model_max_diff``
    from ``check_written_model`` (or ``check_error``).

    Arguments
    ---------
    record_path : str
        JSON file written when the run ends (also when it fails).
    output_folder : str
        The run's ``--output_folder``.
    clip : str
        An audio file for ``check_written_model``.
    *argv : str
        ``train.py`` and its arguments.
    """
    import torch

    from fastast_plugin.training.brain import AudioClassifierBrain

    record = {"steps": [], "peak_memory_bytes": None}
    fit_batch = AudioClassifierBrain.fit_batch

    def timed_fit_batch(self, batch):
        cuda = _cuda_device(self.device)
        if cuda is not None and not record["steps"]:
            torch.cuda.reset_peak_memory_stats(cuda)
        start = time.perf_counter()
        loss = fit_batch(self, batch)
        end = time.perf_counter()
        step = {"seconds": end - start, "end": end, "clips": len(batch.id), "loss": float(loss)}
        record["steps"].append(step)
        if cuda is not None:
            record["peak_memory_bytes"] = torch.cuda.max_memory_allocated(cuda)
        return loss

    AudioClassifierBrain.fit_batch = timed_fit_batch
    sys.argv = list(argv)
    sys.path.insert(0, os.getcwd())  # train.py imports its prepare module
    try:
        runpy.run_path(argv[0], run_name="__main__")
        try:
            record["export_vs_model_max_diff"] = check_written_model(Path(output_folder), clip)
        except Exception as error:  # noqa: BLE001 -- any failure to load is the finding
            record["check_error"] = repr(error)
    finally:
        Path(record_path).write_text(json.dumps(record))


def check_written_model(output_folder, clip):
    """Load ``model.pt`` (``from_pretrained``) and ``export/`` (``from_hparams``) on the CPU.

    Arguments
    ---------
    output_folder : Path
        A recipe run's output folder.
    clip : str
        An audio file.

    Returns
    -------
    float
        The largest difference between the two models' logits on ``clip``.
    """
    import torch

    from fastast_plugin.data.audio import load_audio
    from fastast_plugin.inference.classifier import AudioClassifier
    from fastast_plugin.models.pretrained import from_pretrained

    classifier = AudioClassifier.from_hparams(
        source=output_folder / "export", run_opts={"device": "cpu"}
    )
    exported = classifier.classify_files([clip], top_k=1, progress=False)[0].windows[0].scores
    model = from_pretrained(output_folder / "model.pt").eval()
    with torch.no_grad():
        direct = model(classifier.mods.compute_features(load_audio(clip)[None]))[0]
    return float((exported - direct).abs().max())


def probe_classify(record_path, *argv):
    """Run ``fastast classify`` once per command line of ``argv`` (split at ``--``), timed.

    One process for all settings: the model is read and the libraries
    imported once. Each call's ``classify_files`` is timed (its scores are
    on the CPU when it returns); an exception ends that call only.

    Arguments
    ---------
    record_path : str
        JSON file written at the end: per call its ``argv``, ``status``,
        ``seconds``, ``files``, ``failed``, ``peak_memory_bytes`` and
        ``labels`` (path -> top label).
    *argv : str
        ``fastast classify`` command lines (without ``fastast classify``),
        separated by ``--``.

    Returns
    -------
    int
        1 when a call failed, else 0.
    """
    import contextlib
    import io

    import torch

    from fastast_plugin import cli
    from fastast_plugin.inference.classifier import AudioClassifier

    calls = []
    classify_files = AudioClassifier.classify_files

    def timed(self, paths, *args, **kwargs):
        cuda = _cuda_device(self.device)
        if cuda is not None:
            torch.cuda.reset_peak_memory_stats(cuda)
        start = time.perf_counter()
        results = classify_files(self, paths, *args, **kwargs)
        calls[-1].update(seconds=time.perf_counter() - start, files=len(paths))
        calls[-1]["failed"] = sum(result.error is not None for result in results)
        if cuda is not None:
            calls[-1]["peak_memory_bytes"] = torch.cuda.max_memory_allocated(cuda)
        return results

    AudioClassifier.classify_files = timed
    command_lines = [[]]
    for arg in argv:
        if arg == "--":
            command_lines.append([])
        else:
            command_lines[-1].append(arg)
    try:
        for command_line in command_lines:
            calls.append({"argv": command_line})
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    calls[-1]["status"] = cli.main(["classify", *command_line])
            except Exception as error:  # noqa: BLE001 -- reported, the next call still runs
                calls[-1]["status"] = repr(error)
            print(printed.getvalue(), end="", flush=True)
            calls[-1]["labels"] = top_labels(printed.getvalue())
    finally:
        Path(record_path).write_text(json.dumps(calls))
    return int(any(call["status"] != 0 for call in calls))


def top_labels(printed):
    """``{path: top label}`` of the JSON lines that ``fastast classify --json`` printed.

    Example
    -------
    >>> top_labels('{"path": "a.wav", "labels": ["one"], "scores": [0.9]}\\nnot json')
    {'a.wav': 'one'}
    """
    found = {}
    for line in printed.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("labels"):
                found[record["path"]] = record["labels"][0]
    return found


PROBES = {"probe-train": probe_train, "probe-classify": probe_classify}


# ----------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------
@dataclasses.dataclass
class Step:
    """One timed command of a part, and what it gave."""

    part: str
    name: str
    command: list = None
    cwd: Path = REPO
    timeout: float = 60
    status: str = "not run"
    seconds: float = None
    error: str = None
    figures: dict = dataclasses.field(default_factory=dict)
    log: Path = None


class Runner:
    """Runs steps as subprocesses (killed with their children at a time-out) under one deadline.

    Arguments
    ---------
    work : Path
        Where logs and outputs of the steps go.
    deadline_s : float
        Seconds from now after which no step starts and running ones are cut.
    env : dict
        The subprocesses' environment.
    """

    def __init__(self, work, deadline_s, env):
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + deadline_s
        self.env = env
        self.steps = []

    def run(self, step):
        """Run ``step.command``; return True when it exited with 0."""
        self.steps.append(step)
        left = self.deadline - time.monotonic()
        if left < 5:
            step.error = "not started: the time budget (--deadline) was spent"
            return False
        step.log = self.logs / f"{step.name}.log"
        start = time.monotonic()
        with open(step.log, "w") as log:
            log.write(f"$ (cd {step.cwd} && {shlex.join(map(str, step.command))})\n")
            log.flush()
            process = subprocess.Popen(
                [str(part) for part in step.command],
                cwd=step.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its data-loader workers are killed with it
            )
            try:
                code = process.wait(timeout=min(step.timeout, left))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None
        step.seconds = time.monotonic() - start
        if code == 0:
            step.status = "ok"
            return True
        step.status = "failed"
        reason = "timed out" if code is None else f"exit status {code}"
        step.error = f"{reason}; end of {step.log.name}:\n{step.log.read_text()[-LOG_TAIL:]}"
        return False

    def skip(self, step, reason):
        """Record a step that could not run."""
        step.error = reason
        self.steps.append(step)

    def fail(self, step, reason):
        """Mark a step that ran as failed by a check of its results."""
        step.status = "failed"
        step.error = reason


def python(*args):
    """A command line of this Python."""
    return [sys.executable, *args]


def device_tests_step(runner, args, size):
    """Part 1: the tests that take the ``device`` fixture, on ``args.device``."""
    report = runner.work / "tests.xml"
    step = Step(
        "tests",
        "tests",
        python(
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfE",
            f"--device={args.device}",
            "--device-tests-only",
            f"--junitxml={report}",
            *size.tests,
        ),
        timeout=size.timeouts["tests"],
    )
    runner.run(step)
    if report.exists():
        step.figures = junit_counts(report)
    if step.status == "ok" and not step.figures.get("tests"):
        runner.fail(step, "no test ran")


def junit_counts(path):
    """Counts and failed test names of a pytest JUnit XML report.

    Arguments
    ---------
    path : Path
        The ``--junitxml`` file.

    Returns
    -------
    dict
        ``tests``, ``failures``, ``errors``, ``skipped`` and ``failed``
        (``file::name`` of each failure or error).

    Example
    -------
    >>> path = getfixture("tmp_path") / "r.xml"
    >>> _ = path.write_text('<testsuites><testsuite tests="2" failures="1" errors="0" '
    ...     'skipped="0"><testcase classname="tests.a" name="t1"/><testcase '
    ...     'classname="tests.a" name="t2"><failure message="x"/></testcase>'
    ...     '</testsuite></testsuites>')
    >>> junit_counts(path)
    {'tests': 2, 'failures': 1, 'errors': 0, 'skipped': 0, 'failed': ['tests.a::t2']}
    """
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    counts["failed"] = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return counts


def bench_step(runner, args, size):
    """Part 2: the GPU table."""
    table = runner.work / "bench.json"
    step = Step(
        "bench",
        "bench",
        python(
            "-m",
            "fastast_plugin.evaluation.bench",
            "--gpu-table",
            "--device",
            args.device,
            *size.bench,
            "--json",
            table,
        ),
        timeout=size.timeouts["bench"],
    )
    if runner.run(step):
        step.figures["rows"] = json.loads(table.read_text())


def fsdd_subset(recordings, folder, takes):
    """Links to the FSDD files of ``recordings`` whose take is below ``takes``, in ``folder``.

    Arguments
    ---------
    recordings : Path
        FSDD's ``recordings`` folder.
    folder : Path
        Where the links go.
    takes : int
        Takes 0 to ``takes - 1`` are kept.

    Returns
    -------
    int
        Number of files linked.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> (root / "rec").mkdir()
    >>> for name in ("3_lucas_0.wav", "3_lucas_12.wav", "notes.txt"):
    ...     _ = (root / "rec" / name).write_bytes(b"")
    >>> fsdd_subset(root / "rec", root / "sub", 12), sorted(p.name for p in (root / "sub").iterdir())
    (1, ['3_lucas_0.wav'])
    """
    folder.mkdir(parents=True)
    kept = 0
    for path in sorted(recordings.iterdir()):
        match = FSDD_NAME.match(path.name)
        if match and int(match.group(1)) < takes:
            (folder / path.name).symlink_to(path.resolve())
            kept += 1
    return kept


def layout_step(runner, args, size):
    """FSDD laid out as Speech Commands; returns the folder, or None when it failed."""
    step = Step("train", "layout", timeout=size.timeouts["layout"])
    source = Path(args.fsdd)
    if not source.is_dir():
        runner.skip(step, f"--fsdd {source} is not a folder (expected FSDD's recordings/)")
        step.status = "failed"
        return None
    if size.takes is not None:
        subset = runner.work / "fsdd_subset"
        fsdd_subset(source, subset, size.takes)
        source = subset
    laid_out = runner.work / "fsdd_sc"
    step.command = python(REPO / "tools" / "fsdd_layout.py", source, laid_out)
    if not runner.run(step):
        return None
    step.figures["clips"] = sum(1 for _ in laid_out.rglob("*.wav"))
    return laid_out


def train_runs(size):
    """``(name, compiled, overrides)`` of every training run, eager ones first."""
    compile_args = ("--compile", "--compile_module_keys", "embedding_model", "classifier")
    runs = []
    for compiled in size.compiled:
        for setting, merge in (("r0", ("--r=0",)), ("keep0.85", (f"--keep_ratio={KEEP_RATIO}",))):
            name = f"train_{'compiled' if compiled else 'eager'}_{setting}"
            runs.append((name, compiled, merge + (compile_args if compiled else ())))
    return runs


def train_step(runner, args, size, data, name, compiled, overrides):
    """One recipe run through ``probe-train``: its figures and checks; returns its output folder."""
    out = runner.work / name
    record = runner.work / f"{name}.probe.json"
    clip = min(Path(data).rglob("*.wav"))
    recipe_args = [
        "train.py",
        "hparams/tome_ast.yaml",
        f"--data_folder={data}",
        f"--output_folder={out}",
        "--download=False",
        "--init_from=",  # random: no network there
        f"--device={args.device}",
        f"--precision={args.precision}",
        f"--batch_size={size.batch_size}",
        "--debug",
        f"--debug_batches={args.steps or size.steps}",
        "--debug_epochs=1",
        "--noprogressbar",
        *size.model,
        *overrides,
    ]
    step = Step(
        "train",
        name,
        python(TOOL, "probe-train", record, out, clip, "--", *recipe_args),
        cwd=RECIPE,
        timeout=size.timeouts["compiled" if compiled else "train"],
    )
    step.figures.update(compiled=compiled, setting=overrides[0].lstrip("-"))
    if not runner.run(step):
        return None
    probe = json.loads(record.read_text())
    step.figures.update(training_figures(probe["steps"]))
    peak = probe["peak_memory_bytes"]
    step.figures["peak_memory_gib"] = None if peak is None else peak / 2**30
    metrics = json.loads((out / "test_metrics.json").read_text())
    step.figures.update(
        keep_ratio=metrics.get("keep_ratio"),
        tokens=f"{metrics.get('tokens_in')} -> {metrics.get('tokens_out')}",
        test_acc=metrics.get("acc"),
        export_vs_model_max_diff=probe.get("export_vs_model_max_diff"),
    )
    if "check_error" in probe:
        runner.fail(step, f"model.pt / export/ did not load: {probe['check_error']}")
    elif probe["export_vs_model_max_diff"] > 1e-4:
        runner.fail(step, "export/ and model.pt give different logits")
    elif not step.figures["loss_down"]:
        runner.fail(step, f"the training loss did not go down: {step.figures['losses']}")
    return out


def training_figures(steps):
    """Throughput and loss of a training run from its per-step record.

    The first step (compilation, allocator warm-up) is left out of the
    rates: ``train_clips_per_s`` spans the ends of steps 1 and N (data
    loading included), ``step_clips_per_s`` sums the steps alone. The loss
    went down when the mean of the last third of the steps is below that of
    the first third.

    Arguments
    ---------
    steps : list of dict
        ``seconds``, ``end``, ``clips`` and ``loss`` of each step.

    Returns
    -------
    dict

    Example
    -------
    >>> steps = [{"seconds": s, "end": e, "clips": 8, "loss": l}
    ...          for s, e, l in ((5.0, 5.0, 0.9), (1.0, 7.0, 0.8), (1.0, 9.0, 0.5))]
    >>> f = training_figures(steps)
    >>> f["train_clips_per_s"], f["step_clips_per_s"], f["first_step_s"], f["loss_down"]
    (4.0, 8.0, 5.0, True)
    """
    if len(steps) < 2:
        raise ValueError(f"a training run needs 2 steps or more to be timed, got {len(steps)}")
    later = steps[1:]
    clips = sum(step["clips"] for step in later)
    third = max(1, len(steps) // 3)
    losses = [step["loss"] for step in steps]
    first, last = sum(losses[:third]) / third, sum(losses[-third:]) / third
    return {
        "steps": len(steps),
        "batch": steps[0]["clips"],
        "train_clips_per_s": clips / (steps[-1]["end"] - steps[0]["end"]),
        "step_clips_per_s": clips / sum(step["seconds"] for step in later),
        "first_step_s": steps[0]["seconds"],
        "losses": [round(loss, 4) for loss in losses],
        "loss_first": first,
        "loss_last": last,
        "loss_down": last < first,
    }


CLASSIFY_SETTINGS = tuple(
    (precision, setting, merge)
    for precision in ("fp32", "bf16")
    for setting, merge in (("r0", ()), (f"keep{KEEP_RATIO}", ("--keep-ratio", str(KEEP_RATIO))))
)


def classify_step(runner, args, size, data, export):
    """Part 4: ``fastast classify`` of the laid-out folder, r = 0 / keep 0.85, fp32 / bf16."""
    record = runner.work / "classify.probe.json"
    command_lines = []
    for precision, _, merge in CLASSIFY_SETTINGS:
        command_lines += [
            "--",
            export,
            data,
            "--json",
            "--top-k=1",
            f"--device={args.device}",
            f"--precision={precision}",
            f"--batch-size={size.classify_batch}",
            *merge,
        ]
    step = Step(
        "classify",
        "classify",
        python(TOOL, "probe-classify", record, *command_lines),
        timeout=size.timeouts["classify"],
    )
    if export is None:
        runner.skip(step, "no exported model: the eager r = 0 training run did not write one")
        return
    runner.run(step)
    if not record.exists():
        return
    calls = json.loads(record.read_text())
    reference = calls[0].get("labels", {})
    rows = []
    for (precision, setting, _), call in zip(CLASSIFY_SETTINGS, calls):
        peak = call.get("peak_memory_bytes")
        labels = call.get("labels", {})
        row = {"precision": precision, "setting": setting, "status": call.get("status")}
        if "seconds" in call:
            row.update(
                clips=call["files"],
                failed=call["failed"],
                clips_per_s=call["files"] / call["seconds"],
                peak_memory_gib=None if peak is None else peak / 2**30,
                top1_agrees_with_fp32_r0=sum(
                    labels.get(path) == label for path, label in reference.items()
                )
                / max(1, len(reference)),
            )
        rows.append(row)
    step.figures["rows"] = rows
    if step.status == "ok" and (len(rows) != len(CLASSIFY_SETTINGS) or not reference):
        runner.fail(step, "a setting classified nothing")


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def device_name(device):
    """The GPU's name, or the CPU's."""
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(torch.device(device))
            return f"{name} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def markdown_table(rows, columns):
    """``rows`` (dicts) as a Markdown table of ``columns``; floats to 4 significant digits.

    Example
    -------
    >>> print(markdown_table([{"a": 1.23456, "b": None}], ["a", "b"]))
    | a | b |
    |---|---|
    | 1.235 | - |
    """

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def bench_tables(rows):
    """One table per kind of row of the benchmark's JSON, with its scalar fields."""
    tables = []
    for kind in dict.fromkeys(row.get("kind") for row in rows):
        of_kind = [row for row in rows if row.get("kind") == kind]
        columns = [
            key
            for key in dict.fromkeys(k for row in of_kind for k in row)
            if key != "kind" and not any(isinstance(row.get(key), list | dict) for row in of_kind)
        ]
        tables.append(f"{kind}:\n\n{markdown_table(of_kind, columns)}")
    return "\n\n".join(tables)


TRAIN_COLUMNS = (
    "name",
    "status",
    "steps",
    "batch",
    "train_clips_per_s",
    "step_clips_per_s",
    "first_step_s",
    "peak_memory_gib",
    "loss_first",
    "loss_last",
    "tokens",
    "export_vs_model_max_diff",
    "seconds",
)
CLASSIFY_COLUMNS = (
    "precision",
    "setting",
    "status",
    "clips",
    "failed",
    "clips_per_s",
    "top1_agrees_with_fp32_r0",
    "peak_memory_gib",
)


def summary(steps, header):
    """The Markdown report of every step."""
    rows = [
        {"step": s.name, "part": s.part, "status": s.status, "seconds": s.seconds} for s in steps
    ]
    sections = [header, "## Steps", markdown_table(rows, ["part", "step", "status", "seconds"])]
    by_part = {part: [s for s in steps if s.part == part] for part in PARTS}
    for step in by_part["tests"]:
        figures = {k: v for k, v in step.figures.items() if k != "failed"}
        sections += ["## 1. Device tests", markdown_table([figures], list(figures) or ["tests"])]
        if step.figures.get("failed"):
            sections.append("Failed: " + ", ".join(f"`{name}`" for name in step.figures["failed"]))
    for step in by_part["bench"]:
        sections += ["## 2. GPU table", bench_tables(step.figures.get("rows", []))]
    flat = [
        {"name": s.name, "status": s.status, "seconds": s.seconds, **s.figures}
        for s in by_part["train"]
        if s.name != "layout"
    ]
    sections += ["## 3. Training (Speech Commands recipe on FSDD)"]
    sections += [markdown_table(flat, TRAIN_COLUMNS)]
    for step in by_part["classify"]:
        sections += [
            f"## 4. Inference (fastast classify, one process, {step.seconds or 0:.0f} s)",
            markdown_table(step.figures.get("rows", []), CLASSIFY_COLUMNS),
        ]
    failures = [s for s in steps if s.status != "ok"]
    if failures:
        sections.append("## Failures")
        sections += [f"`{s.name}`: {s.status}\n\n```\n{s.error}\n```" for s in failures]
    sections.append("## Commands")
    sections += [
        f"* `{s.name}`: `cd {s.cwd} && {shlex.join(map(str, s.command))}`"
        for s in steps
        if s.command
    ]
    return "\n\n".join(sections) + "\n"


def versions():
    """Versions of the packages the check depends on."""
    import importlib.metadata

    found = {"python": platform.python_version()}
    for name in ("torch", "torchaudio", "timm", "speechbrain", "transformers"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def default_fsdd():
    """The first of ``FSDD_CANDIDATES`` that exists (else the last, to be reported missing)."""
    return next((str(path) for path in FSDD_CANDIDATES if path.is_dir()), str(FSDD_CANDIDATES[-1]))


def parse_args(argv):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="tools/gpu_check.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="report folder ($OUT)")
    parser.add_argument("--work", help="data, checkpoints and logs (default: a new temp folder)")
    parser.add_argument("--fsdd", default=default_fsdd(), help="FSDD's recordings/ folder")
    parser.add_argument("--steps", type=int, help="training steps per run (default: the size's)")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    parser.add_argument("--deadline", type=float, help="seconds (default: the size's)")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("--out is required when $OUT is not set")
    args.parts = args.parts.split(",")
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: {unknown} not among {list(PARTS)}")
    if args.steps is not None and args.steps < 2:
        parser.error(f"--steps must be >= 2 (the first step is not timed), got {args.steps}")
    return args


def main(argv=None):
    """Run the check; returns the exit status (1 when a step failed or did not run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PROBES:  # tools/gpu_check.py probe-NAME ARGS -- COMMAND
        separator = argv.index("--")
        return PROBES[argv[0]](*argv[1:separator], *argv[separator + 1 :])
    args = parse_args(argv)
    size = SIZES[args.size]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    runner = Runner(work, args.deadline or size.deadline_s, env)
    started = datetime.datetime.now().astimezone()
    if "tests" in args.parts:
        device_tests_step(runner, args, size)
    if "bench" in args.parts:
        bench_step(runner, args, size)
    data = export = None
    if {"train", "classify"} & set(args.parts):
        data = layout_step(runner, args, size)
    runs = train_runs(size) if "train" in args.parts else []
    eager = [run for run in runs if not run[1]]
    compiled = [run for run in runs if run[1]]
    for name, is_compiled, overrides in eager:
        if data is None:
            runner.skip(Step("train", name), "no data: the FSDD layout failed")
            continue
        folder = train_step(runner, args, size, data, name, is_compiled, overrides)
        if overrides == ("--r=0",) and folder is not None and (folder / "export").is_dir():
            export = folder / "export"
    if "classify" in args.parts:
        classify_step(runner, args, size, data, export)
    for name, is_compiled, overrides in compiled:  # the slowest last
        if data is None:
            runner.skip(Step("train", name), "no data: the FSDD layout failed")
            continue
        train_step(runner, args, size, data, name, is_compiled, overrides)
    header = (
        f"# GPU check: {device_name(args.device)}, {started:%Y-%m-%d %H:%M %Z}\n\n"
        f"`tools/gpu_check.sh {shlex.join(argv)}` (size {args.size}, training precision "
        f"{args.precision}); {json.dumps(versions())}"
    )
    report = summary(runner.steps, header)
    (out / "gpu_check.md").write_text(report)
    record = {
        "date": started.isoformat(),
        "device": device_name(args.device),
        "argv": argv,
        "versions": versions(),
        "steps": [
            {**dataclasses.asdict(s), "cwd": str(s.cwd), "log": s.log and str(s.log)}
            for s in runner.steps
        ],
    }
    (out / "gpu_check.json").write_text(json.dumps(record, indent=1, default=str))
    with tarfile.open(out / "logs.tar.gz", "w:gz") as archive:
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix in (".log", ".txt", ".json", ".xml", ".csv"):
                archive.add(path, arcname=str(path.relative_to(work)))
    print(report)
    return 0 if all(step.status == "ok" for step in runner.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
