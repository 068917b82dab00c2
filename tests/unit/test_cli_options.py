"""The shared command-line options: their types, checks, several values and old spellings.

(How every ``fastast`` command takes them is in ``test_cli.py``.)

Authors
 * fastast developers 2026
"""

import argparse
import logging

import pytest

from fastast_plugin.cli_options import (
    add_deprecated_alias,
    add_option,
    batch_size_argument,
    device_argument,
    keep_ratio_argument,
    patch_size_argument,
    r_argument,
)
from fastast_plugin.models.ast import ASTEncoder


def test_r_values_are_ints_or_tome_schedules_the_encoder_takes():
    assert r_argument("16") == 16 and r_argument("0") == 0
    assert r_argument("16,-1") == (16, -1.0) and r_argument("8,0.5") == (8, 0.5)
    encoder = ASTEncoder("tiny224", depth=4, input_tdim=128)
    encoder.set_merge(r=r_argument("16,-1"))
    assert encoder.merge_schedule() == [32, 21, 10, 0]  # ToMe's decreasing schedule
    # What the model would refuse is refused while parsing.
    for bad in ("x", "16,y", "-1", "16,2", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {bad!r}"):
            r_argument(bad)


@pytest.mark.parametrize(
    "parse, good, value, bad",
    [
        (keep_ratio_argument, "1", 1.0, ["0", "1.5", "-0.5", "nan", "x"]),
        (patch_size_argument, "16,24", (16, 24), ["0", "16x", "16x24x8", "1.5", "x"]),
        (batch_size_argument, "1", 1, ["0", "-2", "1.5", "x"]),
        (device_argument, "cpu", "cpu", ["gpu", "cuda:x", ""]),
    ],
)
def test_each_type_parses_its_values_and_names_what_it_expected(parse, good, value, bad):
    assert parse(good) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected|must be"):
            parse(text)


def test_several_values_and_the_default_in_the_help():
    parser = argparse.ArgumentParser()
    add_option(parser, "r", default=[0], many=True, note="one row each")
    add_option(parser, "batch_size", default=8)
    assert parser.parse_args([]).r == [0]
    assert parser.parse_args(["--r", "0", "16", "16,-1"]).r == [0, 16, (16, -1.0)]
    assert parser.parse_args(["--batch-size", "2"]).batch_size == 2
    text = " ".join(parser.format_help().split())
    assert "(16,-1); one row each (default: 0)" in text
    assert "inputs per forward pass (default: 8)" in text


def test_an_old_spelling_parses_as_the_new_one_and_warns(caplog):
    parser = argparse.ArgumentParser(prog="fastast x")
    add_option(parser, "precision", default=["fp32"], many=True, aliases=["--dtypes"])
    new = parser.add_argument("--store-dtype", choices=["float16", "float32"], default="float16")
    add_deprecated_alias(parser, "--dtype", new)
    with caplog.at_level(logging.WARNING):
        args = parser.parse_args(["--dtypes", "bf16", "fp16", "--dtype", "float32"])
    assert args.precision == ["bf16", "fp16"] and args.store_dtype == "float32"
    assert "fastast x: --dtypes is deprecated, use --precision" in caplog.text
    assert "fastast x: --dtype is deprecated, use --store-dtype" in caplog.text
    assert parser.parse_args([]).precision == ["fp32"]  # the alias leaves the default alone
    with pytest.raises(SystemExit):
        parser.parse_args(["--dtypes", "fp64"])  # checked as the new spelling is
    assert "--dtype" not in parser.format_help()  # hidden from --help
