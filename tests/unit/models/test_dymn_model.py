"""Unit tests for the DyMN model (``fastast_plugin.models.dymn.model``).

The expected state-dict layout, channel widths, parameter counts and feature
map sizes are written out in ``dymn_layout.py`` from EfficientAT's
``models/dymn/model.py``, ``models/dymn/dy_block.py`` and README
(https://github.com/fschmid56/EfficientAT), independently of the model code.

Authors
 * fastast developers 2026
"""

import math

import pytest
import torch
import torch.nn.functional as F
from dymn_layout import (
    BLOCKS,
    HEAD,
    MAPS_1000,
    NUM_BLOCKS,
    PARAMS,
    STRIDED,
    calibrated_model,
    fake_state_dict,
    is_trainable_key,
    key_shapes,
)

# ---------------------------------------------------------------------------
# The hand-written layout tables are self-consistent
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [0.4, 1.0, 2.0])
def test_layout_table_matches_documented_counts(width):
    table = key_shapes(width)
    assert len(table) == 578
    prefixes = {}
    for key in table:
        prefixes[key.split(".")[0]] = prefixes.get(key.split(".")[0], 0) + 1
    assert prefixes == {"in_c": 6, "layers": 562, "out_c": 6, "classifier": 4}
    assert sum(k.startswith("layers.0.") for k in table) == 30
    assert sum(k.startswith("layers.1.") for k in table) == 38
    trainable = sum(math.prod(s) for k, s in table.items() if is_trainable_key(k))
    bn_stats = sum(
        math.prod(s) for k, s in table.items() if k.endswith(("running_mean", "running_var"))
    )
    assert (trainable, trainable + bn_stats) == PARAMS[width]


# ---------------------------------------------------------------------------
# State dict, parameter counts, shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [0.4, 1.0, 2.0])
def test_efficientat_state_dict_loads_strictly(width):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=527, width_mult=width)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert own == key_shapes(width)

    state = fake_state_dict(width)
    result = model.load_state_dict(state)  # strict by default
    assert not result.missing_keys and not result.unexpected_keys
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # The temperature is a plain attribute, never part of the state dict.
    assert not any("temperature" in k for k in loaded)


@pytest.mark.parametrize("width", [0.4, 1.0, 2.0])
def test_parameter_counts(width):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=527, width_mult=width)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_stats = sum(
        b.numel() for k, b in model.named_buffers() if k.endswith(("running_mean", "running_var"))
    )
    assert (trainable, trainable + bn_stats) == PARAMS[width]
    # README "Params (M)" (trainable + BN statistics): 1.97 / 10.57 / 40.02.
    readme = {0.4: 1.97, 1.0: 10.57, 2.0: 40.02}[width]
    assert round((trainable + bn_stats) / 1e6, 2) == readme
    assert model.embedding_dim == HEAD[width][1]
    # TF-style BatchNorm everywhere, dropout 0.2 in the head.
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)
    assert model.classifier[4].p == 0.2
    # Static expansion activation: ReLU in blocks 1-5, Hardswish from block 6.
    acts = [type(model.layers[i].exp_act) for i in range(1, NUM_BLOCKS)]
    assert acts == [torch.nn.ReLU] * 5 + [torch.nn.Hardswish] * 9


@pytest.mark.parametrize("width", [0.4, 1.0])
def test_feature_map_shapes_10s(width, device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=527, width_mult=width).eval().to(device)
    captured = []
    modules = [model.in_c, *model.layers, model.out_c]
    hooks = [m.register_forward_hook(lambda m, i, o: captured.append(o.shape)) for m in modules]
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 1, 128, 1000, device=device))
        logits = model.forward_head(maps[-1].mean(dim=(2, 3)))
    for hook in hooks:
        hook.remove()

    c0, embed, _ = HEAD[width]
    channels = [c0] + [b[2] for b in BLOCKS[width]] + [embed]
    expected = [(1, c, f, t) for c, (f, t) in zip(channels, MAPS_1000 + [(4, 32)])]
    assert [tuple(m.shape) for m in maps] == expected
    assert [tuple(s) for s in captured] == expected
    assert logits.shape == (1, 527)


def test_forward_embedding_and_head_agree(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=11, width_mult=0.4).eval().to(device)
    x = torch.randn(2, 1, 128, 64, device=device)
    with torch.no_grad():
        features = model.forward_features(x)
        embedding = model.forward_embedding(x)
        logits = model(x)
    assert features.shape == (2, 384, 4, 2)
    torch.testing.assert_close(embedding, features.mean(dim=(2, 3)))
    torch.testing.assert_close(model.forward_head(embedding), logits)
    assert logits.shape == (2, 11)


def test_dymn20_short_clip_shapes_and_strides(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=527, width_mult=2.0).eval().to(device)
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 1, 128, 100, device=device))
    # 100 frames: 50 -> 25 -> 13 -> 7 -> 4.
    sizes = [(64, 50)] * 2 + [(32, 25)] * 2 + [(16, 13)] * 3 + [(8, 7)] * 6 + [(4, 4)] * 4
    assert [tuple(m.shape[2:]) for m in maps] == sizes
    assert maps[-1].shape[1] == 1920

    # Strides (2, 2, 2, 1) keep time resolution and every weight shape.
    model = DyMN(width_mult=0.4, strides=(2, 2, 2, 1)).eval()
    model.load_state_dict(fake_state_dict(0.4))
    model.to(device)
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 1, 128, 1000, device=device))
    assert features.shape == (1, 384, 8, 63)


def test_forward_is_per_sample_and_stateless(device):
    model = calibrated_model(7).to(device)
    x = torch.randn(3, 1, 128, 64, device=device)
    internals = set(vars(torch.nn.Module()))

    def snapshot():
        return {
            name: {k: v for k, v in vars(m).items() if k not in internals}
            for name, m in model.named_modules()
        }

    before = snapshot()
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert snapshot() == before
    # Per-sample dynamic kernels: a clip's output does not depend on the batch.
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batch[0], batch[1])


def test_backward_reaches_every_parameter(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(num_classes=3, width_mult=0.4).train().to(device)
    model(torch.randn(2, 1, 128, 64, device=device)).sum().backward()
    missing = [
        name
        for name, param in model.named_parameters()
        if param.grad is None or not param.grad.abs().sum() > 0
    ]
    assert missing == []


def test_dynamic_conv_matches_per_sample_convolution(device):
    from fastast_plugin.models.dymn.model import DyMN

    torch.manual_seed(0)
    model = DyMN(width_mult=0.4, temperature=2.0).eval().to(device)
    block = model.layers[3]  # 16 -> 32 -> 16, depthwise 5x5 with stride 2
    c_in, c_exp, c_out, h = BLOCKS[0.4][3]
    x = torch.randn(3, c_exp, 16, 20, device=device)
    context = torch.randn(3, h, device=device)

    for conv, shape, stride, padding, groups in (
        (block.depth_conv, (c_exp, 1, 5, 5), 2, 2, c_exp),
        (block.proj_conv, (c_out, c_exp, 1, 1), 1, 0, 1),
    ):
        lin_w = conv.residuals[0].weight
        lin_b = conv.residuals[0].bias
        with torch.no_grad():
            # Attention that differs strongly from clip to clip.
            lin_w.copy_(torch.randn(4, h))
            lin_b.copy_(torch.randn(4))
            out = conv(x, context, 2.0)
            expected = []
            for b in range(3):
                att = torch.softmax((context[b] @ lin_w.T + lin_b) / 2.0, dim=0)
                kernel = sum(att[j] * conv.weight[0, 0, j].view(shape) for j in range(4))
                expected.append(
                    F.conv2d(x[b : b + 1], kernel, stride=stride, padding=padding, groups=groups)
                )
        attention = torch.softmax((context @ lin_w.T + lin_b) / 2.0, dim=1)
        assert (attention.max(dim=0).values - attention.min(dim=0).values).max() > 0.3
        torch.testing.assert_close(out, torch.cat(expected), rtol=1e-4, atol=1e-5)


def test_dyrelu_b_coefficients(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(width_mult=0.4).eval().to(device)
    act = model.layers[1].depth_act  # 24 channels
    channels = BLOCKS[0.4][1][1]
    x = torch.randn(2, channels, 5, 7, device=device)
    context = torch.randn(2, BLOCKS[0.4][1][3], device=device)
    with torch.no_grad():
        # theta = 0: a plain ReLU.
        act.coef_net[0].weight.zero_()
        act.coef_net[0].bias.zero_()
        torch.testing.assert_close(act(x, context), torch.relu(x))
        # Channel-major theta (index c * 4 + j): a1 = 1 + t0, a2 = t1,
        # b1 = 0.5 t2, b2 = 0.5 t3.
        theta = torch.rand(channels, 4, device=device) * 1.6 - 0.8
        act.coef_net[0].bias.copy_(torch.logit((theta.flatten() + 1) / 2))
        t = theta.view(1, channels, 1, 1, 4)
        expected = torch.maximum(
            (1 + t[..., 0]) * x + 0.5 * t[..., 2], t[..., 1] * x + 0.5 * t[..., 3]
        )
        torch.testing.assert_close(act(x, context), expected, rtol=1e-5, atol=1e-6)


def test_context_generator(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(width_mult=0.4).eval().to(device)
    gen = model.layers[3].context_gen  # stride 2, 16 -> 32 channels, H = 16
    x = torch.randn(2, 16, 16, 20, device=device)
    with torch.no_grad():
        h_c, g_f, g_t = gen(x)
        joint = torch.cat([x.mean(3, keepdim=True), x.mean(2).unsqueeze(3)], dim=2)
        joint = F.hardswish(gen.joint_norm(gen.joint_conv(joint)))
        h_f, h_t = joint[:, :, :16], joint[:, :, 16:].transpose(2, 3)
        expected_f = gen.conv_f(F.avg_pool2d(h_f, (3, 1), (2, 1), (1, 0)))
        expected_t = gen.conv_t(F.avg_pool2d(h_t, (1, 3), (1, 2), (0, 1)))
    torch.testing.assert_close(h_c, joint.mean(dim=(2, 3)))
    assert g_f.shape == (2, 32, 8, 1) and g_t.shape == (2, 32, 1, 10)
    torch.testing.assert_close(g_f, expected_f)
    torch.testing.assert_close(g_t, expected_t)


def test_residual_connections(device):
    from fastast_plugin.models.dymn.model import DyMN

    model = DyMN(width_mult=0.4).eval().to(device)
    # DY_Block: residual iff stride 1 and in == out (blocks 0, 2, 4, 5, 7-9, 11, 13, 14).
    residual = {
        i for i, (c_in, _, c_out, _) in enumerate(BLOCKS[0.4]) if c_in == c_out and i not in STRIDED
    }
    assert residual == {0, 2, 4, 5, 7, 8, 9, 11, 13, 14}
    with torch.no_grad():
        for i, block in enumerate(model.layers):
            # A zeroed projection BN leaves only the skip path.
            block.proj_norm.weight.zero_()
            block.proj_norm.bias.zero_()
            c_in = BLOCKS[0.4][i][0]
            x = torch.randn(2, c_in, 16, 16, device=device)
            out = block(x, 1.0)
            if i in residual:
                torch.testing.assert_close(out, x)
            else:
                assert out.abs().max() == 0


# ---------------------------------------------------------------------------
# Temperature
# ---------------------------------------------------------------------------


def test_temperature_schedule_values():
    from fastast_plugin.models.dymn.model import DyMN, _temperature_schedule

    assert [_temperature_schedule(e) for e in range(32)] == [
        float(max(30 - e, 1)) for e in range(32)
    ]
    assert _temperature_schedule(0) == 30.0
    assert _temperature_schedule(28) == 2.0
    assert _temperature_schedule(29) == 1.0
    assert _temperature_schedule(500) == 1.0
    with pytest.raises(ValueError, match="epoch"):
        _temperature_schedule(-1)

    model = DyMN(width_mult=0.4)
    assert model.temperature == 1.0
    assert model.update_temperature(0) == 30.0 and model.temperature == 30.0
    assert model.update_temperature(10) == 20.0
    assert model.update_temperature(45) == 1.0
    model.temperature = 7.5
    assert model.temperature == 7.5
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            model.temperature = bad
    with pytest.raises(ValueError, match="temperature"):
        DyMN(width_mult=0.4, temperature=0.0)


def test_temperature_changes_outputs(device):
    model = calibrated_model(4, attention_gain=30.0).to(device)
    x = torch.randn(1, 1, 128, 64, device=device)
    with torch.no_grad():
        at_one = model(x)
        model.temperature = 30.0
        at_thirty = model(x)
        model.temperature = 1.0
        again = model(x)
    assert not torch.allclose(at_one, at_thirty, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(at_one, again)


def test_model_argument_errors(device):
    from fastast_plugin.models.dymn.model import DyMN

    with pytest.raises(ValueError, match="num_classes.*0"):
        DyMN(num_classes=0)
    with pytest.raises(ValueError, match="strides"):
        DyMN(strides=(2, 2, 2))
    model = DyMN(width_mult=0.4).to(device)
    with pytest.raises(ValueError, match=r"\[batch, 1, n_mels, time\].*\(2, 128, 64\)"):
        model(torch.randn(2, 128, 64, device=device))
