"""Sibling recipe YAMLs cannot drift: each differs from ``tome_ast.yaml`` only where it defines itself.

Every YAML stays self-contained (a user reads one file and sees
everything), so the shared settings are written in each of them. This test
diffs each sibling against ``hparams/tome_ast.yaml`` of the same recipe and
assigns every changed line to the setting it belongs to: the top-level key
of its block (``lr``), or ``key.sub`` for an indented entry
(``embedding_model.flexible``); a comment belongs to the setting right below
it (a comment block ended by a blank line to the block it is in, the first
one to the header). A change that belongs to a setting not listed for that
sibling is a drift; a block that ``tome_ast.yaml`` lacks may be listed as a
whole (``patch_size_sampler``).

Authors
 * fastast developers 2026
"""

import difflib
import re

import pytest
from recipe_helpers import RECIPES

KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):")

# What each sibling may change relative to tome_ast.yaml, in both recipes
ALLOWED = {
    "ast.yaml": {"header", "output_folder", "r"},
    "tome_ast_kd.yaml": {
        "header",
        "output_folder",
        "loss",
        "teacher_checkpoint",
        "teacher_logits_dir",
        "teacher_in_shards",
        "teacher_width",
        "kd_lambda",
        "kd_temperature",
        "teacher",
        "kd_loss",
        "brain_settings.teacher",
        "brain_settings.kd_loss",
    },
    # random init on small real datasets (CPU): every training knob chosen for it
    # (the union over the recipes; AudioSet's also turns weight averaging off)
    "tome_ast_scratch.yaml": {
        "header",
        "output_folder",
        "number_of_epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "warmup_steps",
        "lr_decay_start",
        "lr_decay_every",
        "lr_decay_factor",
        "average_last_epochs",
        "loss",
        "target_length",
        "fbank_padding",
        "compute_features.padding",
        "freq_mask",
        "time_mask",
        "mixup_prob",
        "noise_scale",
        "model_size",
        "depth",
        "fstride",
        "tstride",
        "r",
        "init_from",
        "length_mode",
        "embedding_model.length_mode",
        "pooling",
        "embedding_model.pooling",
        "opt_class",
        "opt_class.lr",
        "opt_class.weight_decay",
        "opt_class.betas",
    },
    "flexiast.yaml": {
        "header",
        "output_folder",
        "model_file",
        "patch_sweep_file",
        "cv_patch_sweep_file",
        "loss",
        "model_size",
        "patch_size",
        "fstride",
        "tstride",
        "flexible",
        "r",
        "init_from",
        "train_patch_sizes",
        "train_patch_weights",
        "eval_patch_size",
        "test_patch_sizes",
        "teacher_checkpoint",
        "kd_lambda",
        "kd_temperature",
        "embedding_model.patch_size",
        "embedding_model.flexible",
        "patch_size_sampler",
        "teacher",
        "kd_loss",
        "checkpointer",
        "checkpointer.recoverables",
        "brain_settings.patch_size_sampler",
        "brain_settings.eval_patch_size",
        "brain_settings.teacher",
        "brain_settings.kd_loss",
    },
}


def line_owners(lines):
    """The setting each line belongs to (see the module docstring).

    Arguments
    ---------
    lines : list of str
        The YAML's lines.

    Returns
    -------
    list of str or None
        One owner per line; None for blank lines.
    """
    owners = [None] * len(lines)
    owner = "header"
    pending = []  # comment lines directly above the next setting
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:  # a comment block ended by a blank line: the current block's
            owners_of(owners, pending, owner)
            pending = []
            continue
        if stripped.startswith("#"):
            pending.append(i)
            continue
        match = KEY.match(line)
        if match and not match.group(1):
            owner = match.group(2)
        elif match and len(match.group(1)) == 4:
            owner = f"{owner.split('.')[0]}.{match.group(2)}"
        owners_of(owners, pending, owner)
        pending = []
        owners[i] = owner
    owners_of(owners, pending, owner)
    return owners


def owners_of(owners, indices, owner):
    """Set ``owners[i] = owner`` for every ``i`` in ``indices``."""
    for i in indices:
        owners[i] = owner


def drift(base_text, other_text, allowed):
    """Changed lines of ``other_text`` against ``base_text`` owned by settings not in ``allowed``.

    Arguments
    ---------
    base_text : str
        The reference YAML (``tome_ast.yaml``).
    other_text : str
        A sibling YAML.
    allowed : set of str
        Settings the sibling may change.

    Returns
    -------
    list of str
        ``"<owner>: <line>"`` for every offending line (removed or added).
    """
    base, other = base_text.splitlines(), other_text.splitlines()
    base_owners, other_owners = line_owners(base), line_owners(other)
    base_keys = {owner for owner in base_owners if owner and "." not in owner}

    def is_allowed(owner):
        # a setting the base lacks may be a whole block (its entries too)
        top = owner.split(".")[0]
        return owner in allowed or (top in allowed and top not in base_keys)

    matcher = difflib.SequenceMatcher(a=base, b=other, autojunk=False)
    offending = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        changed = [(base_owners[i], "-", base[i]) for i in range(i1, i2)]
        changed += [(other_owners[j], "+", other[j]) for j in range(j1, j2)]
        for owner, sign, line in changed:
            if owner is not None and not is_allowed(owner):
                offending.append(f"{owner}: {sign}{line}")
    return offending


SIBLINGS = [
    (recipe, name) for recipe in ("SpeechCommands", "ESC50", "AudioSet") for name in sorted(ALLOWED)
]
# VoxCeleb has no distillation YAML (no teacher of VoxCeleb speakers to distil from)
SIBLINGS += [("VoxCeleb", name) for name in ("ast.yaml", "flexiast.yaml", "tome_ast_scratch.yaml")]


@pytest.mark.parametrize("recipe,name", SIBLINGS)
def test_sibling_differs_from_tome_ast_only_where_it_defines_itself(recipe, name):
    folder = RECIPES / recipe / "hparams"
    base = (folder / "tome_ast.yaml").read_text()
    other = (folder / name).read_text()
    assert drift(base, other, ALLOWED[name]) == []


def test_a_changed_shared_setting_is_a_drift():
    folder = RECIPES / "SpeechCommands" / "hparams"
    base = (folder / "tome_ast.yaml").read_text()
    other = (folder / "ast.yaml").read_text()
    assert re.search(r"^lr: ", other, re.M)
    drifted = re.sub(r"^lr: \S+", "lr: 0.5", other, flags=re.M)
    assert drift(base, drifted, ALLOWED["ast.yaml"]) == ["lr: -lr: 0.00025", "lr: +lr: 0.5"]
    # an entry of a shared block, and a setting only one sibling has
    drifted = other.replace("    shuffle: True\n", "    shuffle: False\n")
    assert drift(base, drifted, ALLOWED["ast.yaml"]) == [
        "train_dataloader_options.shuffle: -    shuffle: True",
        "train_dataloader_options.shuffle: +    shuffle: False",
    ]
    drifted = other + "\nextra_setting: 1\n"
    assert drift(base, drifted, ALLOWED["ast.yaml"]) == ["extra_setting: +extra_setting: 1"]


def test_comments_belong_to_the_setting_below_them():
    lines = [
        "# banner",
        "",
        "# seed",
        "seed: 1",
        "# about lr",
        "lr: 2",
        "block:",
        "    # inner",
        "    a: 1",
        "    b: 2",
    ]
    assert line_owners(lines) == [
        "header",
        None,
        "seed",
        "seed",
        "lr",
        "lr",
        "block",
        "block.a",
        "block.a",
        "block.b",
    ]
