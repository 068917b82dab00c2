"""The options the ``fastast`` commands share, declared once: spelling, type, help.

``--r``, ``--keep-ratio``, ``--patch-size``, ``--device``, ``--batch-size``
and ``--precision`` mean the same in every command that takes them
(``classify``, ``export``, ``bench``, ``sweep``, ``precompute``,
``visualize``), parse the same text to the same value and reject a wrong
value with the same message, before any model is built. A command chooses
only its default, whether it takes several values (``bench`` and ``sweep``
measure each one) and a note on what the value does there.

Where this module sits: its users live in ``inference`` (classify, export),
``evaluation`` (bench, sweep, visualize) and ``training`` (precompute), and
none of those may import ``cli``; so it is a layer of its own just below
``inference``, the lowest layer of its users. It checks values with the
code the models use (``models.merge`` for ``r`` and ``keep_ratio``,
``weights.resize`` for patch sizes), one check for the command line and the
model alike.

Authors
 * fastast developers 2026
"""

import argparse

import torch
from speechbrain.utils.logger import get_logger

from fastast_plugin.models.merge import keep_ratio_schedule, parse_r
from fastast_plugin.weights.resize import parse_patch_size

__all__ = [
    "PRECISIONS",
    "SHARED_OPTIONS",
    "add_deprecated_alias",
    "add_option",
    "batch_size_argument",
    "device_argument",
    "keep_ratio_argument",
    "patch_size_argument",
    "r_argument",
]

logger = get_logger(__name__)

# SpeechBrain's precision names (run_opts precision, AMPConfig.from_name).
PRECISIONS = ("fp32", "bf16", "fp16")


def r_argument(text):
    """``--r``: tokens merged per block, an int or ``R,INFLECTION`` (ToMe's schedule).

    Arguments
    ---------
    text : str
        The command-line value.

    Returns
    -------
    int or tuple
        ``r``, or ``(r, inflection)`` as ``ASTEncoder.set_merge`` takes it.

    Example
    -------
    >>> r_argument("16"), r_argument("16,-1")
    (16, (16, -1.0))
    """
    try:
        if "," in text:
            r, inflection = text.split(",", 1)
            value = (int(r), float(inflection))
        else:
            value = int(text)
        parse_r(1, value)  # the model's own check: r >= 0, inflection in [-1, 1]
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected an int >= 0, or R,INFLECTION with INFLECTION in [-1, 1] "
            f"(ToMe's schedule, e.g. 16,-1), got {text!r}"
        ) from None
    return value


def keep_ratio_argument(text):
    """``--keep-ratio``: the fraction of the tokens each block keeps, in (0, 1].

    Arguments
    ---------
    text : str
        The command-line value.

    Returns
    -------
    float

    Example
    -------
    >>> keep_ratio_argument("0.85")
    0.85
    """
    try:
        value = float(text)
        keep_ratio_schedule(1, 1, value, num_protected=0)  # the model's own check
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}") from None
    return value


def patch_size_argument(text):
    """``--patch-size``: ``16`` (the flexible axes) or ``FREQxTIME`` (``16x24``).

    Arguments
    ---------
    text : str
        The command-line value.

    Returns
    -------
    int or tuple of int
        As ``ASTEncoder.set_patch_size`` takes it (``parse_patch_size``
        with ``as_pair=False``).

    Example
    -------
    >>> patch_size_argument("32"), patch_size_argument("16x24")
    (32, (16, 24))
    """
    try:
        return parse_patch_size(text, "the patch size", as_pair=False)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def batch_size_argument(text):
    """``--batch-size``: an int >= 1.

    Arguments
    ---------
    text : str
        The command-line value.

    Returns
    -------
    int

    Example
    -------
    >>> batch_size_argument("8")
    8
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def device_argument(text):
    """``--device``: a name ``torch.device`` reads (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Arguments
    ---------
    text : str
        The command-line value.

    Returns
    -------
    str
        The name as given (SpeechBrain's ``run_opts`` take strings).

    Example
    -------
    >>> device_argument("cuda:1")
    'cuda:1'
    """
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected a torch device (cpu, cuda, cuda:1, mps, ...), got {text!r}"
        ) from None
    return text


# Shared option -> (spelling, argparse settings, help).
SHARED_OPTIONS = {
    "r": (
        "--r",
        {"type": r_argument, "metavar": "R"},
        "tokens merged per block: an int, or R,INFLECTION for ToMe's schedule (16,-1)",
    ),
    "keep_ratio": (
        "--keep-ratio",
        {"type": keep_ratio_argument, "metavar": "K"},
        "fraction of the tokens each block keeps, in (0, 1]; overrides --r",
    ),
    "patch_size": (
        "--patch-size",
        {"type": patch_size_argument, "metavar": "P"},
        "patch size of a flexible model: 16 (its flexible axes) or FREQxTIME (16x24)",
    ),
    "device": (
        "--device",
        {"type": device_argument},
        "torch device to run on (cpu, cuda, cuda:1, ...)",
    ),
    "batch_size": (
        "--batch-size",
        {"type": batch_size_argument, "metavar": "N"},
        "inputs per forward pass",
    ),
    "precision": (
        "--precision",
        {"choices": PRECISIONS},
        "autocast dtype of the model (SpeechBrain's precision names); features stay fp32",
    ),
}


def add_option(parser, name, default=None, many=False, note=None, aliases=()):
    """Adds the shared option ``name`` (a key of ``SHARED_OPTIONS``) to ``parser``.

    Arguments
    ---------
    parser : argparse.ArgumentParser
        A command's parser.
    name : str
        ``r``, ``keep_ratio``, ``patch_size``, ``device``, ``batch_size`` or
        ``precision``; also the attribute the value is stored in.
    default : object, optional
        The command's default (a list when ``many``).
    many : bool
        Take one or more values (a command that measures each of them).
    note : str, optional
        What the value does in this command, appended to the shared help.
    aliases : sequence of str
        Older spellings, still accepted with a warning (``add_deprecated_alias``).

    Returns
    -------
    argparse.Action
        The option added.

    Example
    -------
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_option(parser, "patch_size", many=True, default=[16])
    >>> _ = add_option(parser, "precision", default="fp32", aliases=["--dtype"])
    >>> parser.parse_args(["--patch-size", "16", "32x16", "--precision", "bf16"])
    Namespace(patch_size=[16, (32, 16)], precision='bf16')
    """
    flag, settings, help_text = SHARED_OPTIONS[name]
    if note:
        help_text += f"; {note}"
    if default is not None and default != []:
        shown = " ".join(map(str, default)) if many else default
        help_text += f" (default: {shown})"
    action = parser.add_argument(
        flag,
        dest=name,
        default=default,
        nargs="+" if many else None,
        help=help_text.replace("%", "%%"),
        **settings,
    )
    for alias in aliases:
        add_deprecated_alias(parser, alias, action)
    return action


class _DeprecatedAlias(argparse.Action):
    """Stores like the option it stands for and warns that the spelling is old."""

    def __init__(self, option_strings, dest, replacement, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        logger.warning("%s: %s is deprecated, use %s", parser.prog, option_string, self.replacement)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser, old, action):
    """Accepts ``old`` as an older spelling of ``action``'s option, with a warning.

    The alias parses exactly as the option does, is hidden from ``--help``
    and logs which spelling replaces it.

    Arguments
    ---------
    parser : argparse.ArgumentParser
        The parser holding ``action``.
    old : str
        The old spelling, e.g. ``--dtype``.
    action : argparse.Action
        The option (as ``add_argument`` returned it).

    Example
    -------
    >>> parser = argparse.ArgumentParser(prog="fastast x")
    >>> new = parser.add_argument("--store-dtype", choices=["float16", "float32"])
    >>> add_deprecated_alias(parser, "--dtype", new)
    >>> parser.parse_args(["--dtype", "float32"]).store_dtype
    'float32'
    """
    parser.add_argument(
        old,
        dest=action.dest,
        nargs=action.nargs,
        type=action.type,
        choices=action.choices,
        metavar=action.metavar,
        default=argparse.SUPPRESS,  # the option's own default stands
        help=argparse.SUPPRESS,
        action=_DeprecatedAlias,
        replacement=action.option_strings[0],
    )
