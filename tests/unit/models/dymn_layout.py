"""EfficientAT's DyMN layout, written out by hand for the DyMN tests.

Channel widths, kernel sizes, context sizes, the state-dict layout and the
parameter counts come from EfficientAT (https://github.com/fschmid56/EfficientAT):
``models/dymn/model.py`` (``_dymn_conf``, ``get_model``),
``models/dymn/dy_block.py`` (``DY_Block``, ``DynamicConv``, ``DyReLUB``,
``ContextGen``) and the README's "Params (M)" column; they are independent
of the model code under test. Shared by ``test_dymn.py``,
``test_dymn_weights.py`` and ``test_dymn_frontend.py``.

Authors
 * fastast developers 2026
"""

import functools

import torch

# Per width: (in, expanded, out, context H) for blocks 0..14.
BLOCKS = {
    0.4: [
        (8, 8, 8, 16),
        (8, 24, 16, 16),
        (16, 32, 16, 16),
        (16, 32, 16, 16),
        (16, 48, 16, 16),
        (16, 48, 16, 16),
        (16, 96, 32, 24),
        (32, 80, 32, 24),
        (32, 72, 32, 24),
        (32, 72, 32, 24),
        (32, 192, 48, 48),
        (48, 272, 48, 48),
        (48, 272, 64, 48),
        (64, 384, 64, 48),
        (64, 384, 64, 48),
    ],
    1.0: [
        (16, 16, 16, 32),
        (16, 64, 24, 32),
        (24, 72, 24, 32),
        (24, 72, 40, 32),
        (40, 120, 40, 32),
        (40, 120, 40, 32),
        (40, 240, 80, 64),
        (80, 200, 80, 48),
        (80, 184, 80, 48),
        (80, 184, 80, 48),
        (80, 480, 112, 120),
        (112, 672, 112, 128),
        (112, 672, 160, 128),
        (160, 960, 160, 128),
        (160, 960, 160, 128),
    ],
    2.0: [
        (32, 32, 32, 64),
        (32, 128, 48, 64),
        (48, 144, 48, 64),
        (48, 144, 80, 64),
        (80, 240, 80, 64),
        (80, 240, 80, 64),
        (80, 480, 160, 120),
        (160, 400, 160, 104),
        (160, 368, 160, 96),
        (160, 368, 160, 96),
        (160, 960, 224, 240),
        (224, 1344, 224, 256),
        (224, 1344, 320, 256),
        (320, 1920, 320, 256),
        (320, 1920, 320, 256),
    ],
}
KERNELS = [3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5]
STRIDED = {1, 3, 6, 12}
# Per width: (in_c channels, embedding 6*C_last, classifier hidden width).
HEAD = {0.4: (8, 384, 512), 1.0: (16, 960, 1280), 2.0: (32, 1920, 2560)}
# Trainable parameters and trainable + BN running statistics, 527 classes
# (the latter is the README's "Params (M)": 1.97 / 10.57 / 40.02).
PARAMS = {
    0.4: (1_961_239, 1_971_943),
    1.0: (10_548_479, 10_574_943),
    2.0: (39_966_143, 40_019_071),
}
# (freq, time) after in_c, per block and after out_c for a 128 x 1000 input.
MAPS_1000 = [(64, 500)] * 2 + [(32, 250)] * 2 + [(16, 125)] * 3 + [(8, 63)] * 6 + [(4, 32)] * 4
NUM_BLOCKS = 15
K = 4  # kernels per dynamic convolution


def _bn(prefix, channels):
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def _dyconv(prefix, kernel_numel, context):
    return {
        f"{prefix}.weight": (1, 1, K, kernel_numel),
        f"{prefix}.residuals.0.weight": (K, context),
        f"{prefix}.residuals.0.bias": (K,),
    }


def key_shapes(width, num_classes=527):
    """EfficientAT's DyMN state-dict layout ``{key: shape}``, built from its rules."""
    c0, embed, hidden = HEAD[width]
    table = {"in_c.0.weight": (c0, 1, 3, 3)}
    table.update(_bn("in_c.1", c0))
    for i, ((c_in, c_exp, c_out, h), k) in enumerate(zip(BLOCKS[width], KERNELS)):
        p = f"layers.{i}"
        if c_exp != c_in:
            table.update(_dyconv(f"{p}.exp_conv", c_exp * c_in, h))
            table.update(_bn(f"{p}.exp_norm", c_exp))
        table.update(_dyconv(f"{p}.depth_conv", c_exp * k * k, h))
        table.update(_bn(f"{p}.depth_norm", c_exp))
        table[f"{p}.depth_act.lambdas"] = (4,)
        table[f"{p}.depth_act.init_v"] = (4,)
        table[f"{p}.depth_act.coef_net.0.weight"] = (4 * c_exp, h)
        table[f"{p}.depth_act.coef_net.0.bias"] = (4 * c_exp,)
        table.update(_dyconv(f"{p}.proj_conv", c_out * c_exp, h))
        table.update(_bn(f"{p}.proj_norm", c_out))
        table[f"{p}.context_gen.joint_conv.weight"] = (h, c_in, 1, 1)
        table.update(_bn(f"{p}.context_gen.joint_norm", h))
        for branch in ("conv_f", "conv_t"):
            table[f"{p}.context_gen.{branch}.weight"] = (c_exp, h, 1, 1)
            table[f"{p}.context_gen.{branch}.bias"] = (c_exp,)
    c_last = BLOCKS[width][-1][2]
    table["out_c.0.weight"] = (embed, c_last, 1, 1)
    table.update(_bn("out_c.1", embed))
    table["classifier.2.weight"] = (hidden, embed)
    table["classifier.2.bias"] = (hidden,)
    table["classifier.5.weight"] = (num_classes, hidden)
    table["classifier.5.bias"] = (num_classes,)
    return table


def is_trainable_key(key):
    return not key.endswith(
        ("running_mean", "running_var", "num_batches_tracked", "lambdas", "init_v")
    )


@functools.cache
def _fake_efficientat_state_dict(width, num_classes=527, seed=0):
    """Random tensors with EfficientAT's names and shapes (cached, do not mutate)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in key_shapes(width, num_classes).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234, dtype=torch.long)
        elif key.endswith("lambdas"):
            state[key] = torch.tensor([1.0, 1.0, 0.5, 0.5])
        elif key.endswith("init_v"):
            state[key] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


def fake_state_dict(width, num_classes=527):
    """A fresh (mutable) copy of the cached random EfficientAT state dict."""
    return dict(_fake_efficientat_state_dict(width, num_classes))


def calibrated_model(num_classes, attention_gain=1.0):
    """A dymn04 whose BN statistics fit random input, so signals do not vanish."""
    from fastast_plugin.models.dymn.model import DyMN

    torch.manual_seed(0)
    model = DyMN(num_classes=num_classes, width_mult=0.4)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "residuals.0" in name:
                param.mul_(attention_gain)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # running stats = this batch's stats
                module.reset_running_stats()
        model.train()(torch.randn(8, 1, 128, 64))
    return model.eval()
