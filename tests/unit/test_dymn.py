"""Unit tests for the DyMN teacher and its log-mel front-end.

The expected state-dict layout, channel widths, parameter counts and feature
map sizes are written out here from the DyMN specification
(``shared/design/dymn_kd_spec.md``), independently of the model code.

Authors
 * fastast developers 2026
"""

import functools
import logging
import math

import pytest
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Specification tables (spec sections 2.2, 3 and 4), written out by hand.
# ---------------------------------------------------------------------------

# Per width: (in, expanded, out, context H) for blocks 0..14.
SPEC_BLOCKS = {
    0.4: [
        (8, 8, 8, 16), (8, 24, 16, 16), (16, 32, 16, 16), (16, 32, 16, 16),
        (16, 48, 16, 16), (16, 48, 16, 16), (16, 96, 32, 24), (32, 80, 32, 24),
        (32, 72, 32, 24), (32, 72, 32, 24), (32, 192, 48, 48), (48, 272, 48, 48),
        (48, 272, 64, 48), (64, 384, 64, 48), (64, 384, 64, 48),
    ],
    1.0: [
        (16, 16, 16, 32), (16, 64, 24, 32), (24, 72, 24, 32), (24, 72, 40, 32),
        (40, 120, 40, 32), (40, 120, 40, 32), (40, 240, 80, 64), (80, 200, 80, 48),
        (80, 184, 80, 48), (80, 184, 80, 48), (80, 480, 112, 120),
        (112, 672, 112, 128), (112, 672, 160, 128), (160, 960, 160, 128),
        (160, 960, 160, 128),
    ],
    2.0: [
        (32, 32, 32, 64), (32, 128, 48, 64), (48, 144, 48, 64), (48, 144, 80, 64),
        (80, 240, 80, 64), (80, 240, 80, 64), (80, 480, 160, 120),
        (160, 400, 160, 104), (160, 368, 160, 96), (160, 368, 160, 96),
        (160, 960, 224, 240), (224, 1344, 224, 256), (224, 1344, 320, 256),
        (320, 1920, 320, 256), (320, 1920, 320, 256),
    ],
}
SPEC_KERNELS = [3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5]
SPEC_STRIDED = {1, 3, 6, 12}
# Per width: (in_c channels, embedding 6*C_last, classifier hidden width).
SPEC_HEAD = {0.4: (8, 384, 512), 1.0: (16, 960, 1280), 2.0: (32, 1920, 2560)}
# Trainable parameters and trainable + BN running statistics, 527 classes.
SPEC_PARAMS = {
    0.4: (1_961_239, 1_971_943),
    1.0: (10_548_479, 10_574_943),
    2.0: (39_966_143, 40_019_071),
}
# (freq, time) after in_c, per block and after out_c for a 128 x 1000 input.
SPEC_MAPS_1000 = (
    [(64, 500)] * 2 + [(32, 250)] * 2 + [(16, 125)] * 3 + [(8, 63)] * 6
    + [(4, 32)] * 4
)
NUM_BLOCKS = 15
K = 4  # kernels per dynamic convolution
SILENCE = (math.log(1e-5) + 4.5) / 5


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


def spec_key_shapes(width, num_classes=527):
    """EfficientAT's DyMN state-dict layout, built from the spec's rules."""
    c0, embed, hidden = SPEC_HEAD[width]
    table = {"in_c.0.weight": (c0, 1, 3, 3)}
    table.update(_bn("in_c.1", c0))
    for i, ((c_in, c_exp, c_out, h), k) in enumerate(zip(SPEC_BLOCKS[width], SPEC_KERNELS)):
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
    c_last = SPEC_BLOCKS[width][-1][2]
    table["out_c.0.weight"] = (embed, c_last, 1, 1)
    table.update(_bn("out_c.1", embed))
    table["classifier.2.weight"] = (hidden, embed)
    table["classifier.2.bias"] = (hidden,)
    table["classifier.5.weight"] = (num_classes, hidden)
    table["classifier.5.bias"] = (num_classes,)
    return table


def _is_trainable_key(key):
    return not key.endswith(
        ("running_mean", "running_var", "num_batches_tracked", "lambdas", "init_v")
    )


@functools.lru_cache(maxsize=None)
def _fake_efficientat_state_dict(width, num_classes=527, seed=0):
    """Random tensors with EfficientAT's names and shapes (cached, do not mutate)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in spec_key_shapes(width, num_classes).items():
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


class Payload:
    """A pickled non-tensor object that weights_only loading must refuse."""


def fake_state_dict(width, num_classes=527):
    return dict(_fake_efficientat_state_dict(width, num_classes))


# ---------------------------------------------------------------------------
# Spec tables are self-consistent
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [0.4, 1.0, 2.0])
def test_spec_table_matches_documented_counts(width):
    table = spec_key_shapes(width)
    assert len(table) == 578
    prefixes = {}
    for key in table:
        prefixes[key.split(".")[0]] = prefixes.get(key.split(".")[0], 0) + 1
    assert prefixes == {"in_c": 6, "layers": 562, "out_c": 6, "classifier": 4}
    assert sum(k.startswith("layers.0.") for k in table) == 30
    assert sum(k.startswith("layers.1.") for k in table) == 38
    trainable = sum(math.prod(s) for k, s in table.items() if _is_trainable_key(k))
    bn_stats = sum(
        math.prod(s) for k, s in table.items() if k.endswith(("running_mean", "running_var"))
    )
    assert (trainable, trainable + bn_stats) == SPEC_PARAMS[width]


# ---------------------------------------------------------------------------
# DyMN: state dict, parameter counts, shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [0.4, 1.0, 2.0])
def test_efficientat_state_dict_loads_strictly(width):
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=527, width_mult=width)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert own == spec_key_shapes(width)

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
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=527, width_mult=width)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_stats = sum(
        b.numel() for k, b in model.named_buffers() if k.endswith(("running_mean", "running_var"))
    )
    assert (trainable, trainable + bn_stats) == SPEC_PARAMS[width]
    # README "Params (M)" (trainable + BN statistics): 1.97 / 10.57 / 40.02.
    readme = {0.4: 1.97, 1.0: 10.57, 2.0: 40.02}[width]
    assert round((trainable + bn_stats) / 1e6, 2) == readme
    assert model.embedding_dim == SPEC_HEAD[width][1]
    # TF-style BatchNorm everywhere, dropout 0.2 in the head.
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)
    assert model.classifier[4].p == 0.2
    # Static expansion activation: ReLU in blocks 1-5, Hardswish from block 6.
    acts = [type(model.layers[i].exp_act) for i in range(1, NUM_BLOCKS)]
    assert acts == [torch.nn.ReLU] * 5 + [torch.nn.Hardswish] * 9


@pytest.mark.parametrize("width", [0.4, 1.0])
def test_feature_map_shapes_10s(width):
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=527, width_mult=width).eval()
    captured = []
    modules = [model.in_c, *model.layers, model.out_c]
    hooks = [m.register_forward_hook(lambda m, i, o: captured.append(o.shape)) for m in modules]
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 1, 128, 1000))
        logits = model.forward_head(maps[-1].mean(dim=(2, 3)))
    for hook in hooks:
        hook.remove()

    c0, embed, _ = SPEC_HEAD[width]
    channels = [c0] + [b[2] for b in SPEC_BLOCKS[width]] + [embed]
    expected = [(1, c, f, t) for c, (f, t) in zip(channels, SPEC_MAPS_1000 + [(4, 32)])]
    assert [tuple(m.shape) for m in maps] == expected
    assert [tuple(s) for s in captured] == expected
    assert logits.shape == (1, 527)


def test_forward_embedding_and_head_agree():
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=11, width_mult=0.4).eval()
    x = torch.randn(2, 1, 128, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        embedding = model.forward_embedding(x)
        logits = model(x)
    assert features.shape == (2, 384, 4, 2)
    torch.testing.assert_close(embedding, features.mean(dim=(2, 3)))
    torch.testing.assert_close(model.forward_head(embedding), logits)
    assert logits.shape == (2, 11)


def test_dymn20_short_clip_shapes_and_strides():
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=527, width_mult=2.0).eval()
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 1, 128, 100))
    # 100 frames: 50 -> 25 -> 13 -> 7 -> 4.
    sizes = [(64, 50)] * 2 + [(32, 25)] * 2 + [(16, 13)] * 3 + [(8, 7)] * 6 + [(4, 4)] * 4
    assert [tuple(m.shape[2:]) for m in maps] == sizes
    assert maps[-1].shape[1] == 1920

    # Strides (2, 2, 2, 1) keep time resolution and every weight shape.
    model = DyMN(width_mult=0.4, strides=(2, 2, 2, 1)).eval()
    model.load_state_dict(fake_state_dict(0.4))
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 1, 128, 1000)).shape == (1, 384, 8, 63)


def _calibrated_model(num_classes, attention_gain=1.0):
    """A dymn04 whose BN statistics fit random input, so signals do not vanish."""
    from fastast_plugin.dymn import DyMN

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


def test_forward_is_per_sample_and_stateless():
    model = _calibrated_model(7)
    x = torch.randn(3, 1, 128, 64)
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


def test_backward_reaches_every_parameter():
    from fastast_plugin.dymn import DyMN

    model = DyMN(num_classes=3, width_mult=0.4).train()
    model(torch.randn(2, 1, 128, 64)).sum().backward()
    missing = [
        name
        for name, param in model.named_parameters()
        if param.grad is None or not param.grad.abs().sum() > 0
    ]
    assert missing == []


def test_dynamic_conv_matches_per_sample_convolution():
    from fastast_plugin.dymn import DyMN

    torch.manual_seed(0)
    model = DyMN(width_mult=0.4, temperature=2.0).eval()
    block = model.layers[3]  # 16 -> 32 -> 16, depthwise 5x5 with stride 2
    c_in, c_exp, c_out, h = SPEC_BLOCKS[0.4][3]
    x = torch.randn(3, c_exp, 16, 20)
    context = torch.randn(3, h)

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


def test_dyrelu_b_coefficients():
    from fastast_plugin.dymn import DyMN

    model = DyMN(width_mult=0.4).eval()
    act = model.layers[1].depth_act  # 24 channels
    channels = SPEC_BLOCKS[0.4][1][1]
    x = torch.randn(2, channels, 5, 7)
    context = torch.randn(2, SPEC_BLOCKS[0.4][1][3])
    with torch.no_grad():
        # theta = 0: a plain ReLU.
        act.coef_net[0].weight.zero_()
        act.coef_net[0].bias.zero_()
        torch.testing.assert_close(act(x, context), torch.relu(x))
        # Channel-major theta (index c * 4 + j): a1 = 1 + t0, a2 = t1,
        # b1 = 0.5 t2, b2 = 0.5 t3.
        theta = torch.rand(channels, 4) * 1.6 - 0.8
        act.coef_net[0].bias.copy_(torch.logit((theta.flatten() + 1) / 2))
        t = theta.view(1, channels, 1, 1, 4)
        expected = torch.maximum(
            (1 + t[..., 0]) * x + 0.5 * t[..., 2], t[..., 1] * x + 0.5 * t[..., 3]
        )
        torch.testing.assert_close(act(x, context), expected, rtol=1e-5, atol=1e-6)


def test_context_generator():
    from fastast_plugin.dymn import DyMN

    model = DyMN(width_mult=0.4).eval()
    gen = model.layers[3].context_gen  # stride 2, 16 -> 32 channels, H = 16
    x = torch.randn(2, 16, 16, 20)
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


def test_residual_connections():
    from fastast_plugin.dymn import DyMN

    model = DyMN(width_mult=0.4).eval()
    # Spec: residual iff stride 1 and in == out (blocks 0, 2, 4, 5, 7-9, 11, 13, 14).
    residual = {
        i for i, (c_in, _, c_out, _) in enumerate(SPEC_BLOCKS[0.4])
        if c_in == c_out and i not in SPEC_STRIDED
    }
    assert residual == {0, 2, 4, 5, 7, 8, 9, 11, 13, 14}
    with torch.no_grad():
        for i, block in enumerate(model.layers):
            # A zeroed projection BN leaves only the skip path.
            block.proj_norm.weight.zero_()
            block.proj_norm.bias.zero_()
            c_in = SPEC_BLOCKS[0.4][i][0]
            x = torch.randn(2, c_in, 16, 16)
            out = block(x, 1.0)
            if i in residual:
                torch.testing.assert_close(out, x)
            else:
                assert out.abs().max() == 0


# ---------------------------------------------------------------------------
# Temperature
# ---------------------------------------------------------------------------


def test_temperature_schedule_values():
    from fastast_plugin.dymn import DyMN, temperature_schedule

    assert [temperature_schedule(e) for e in range(32)] == [
        float(max(30 - e, 1)) for e in range(32)
    ]
    assert temperature_schedule(0) == 30.0
    assert temperature_schedule(28) == 2.0
    assert temperature_schedule(29) == 1.0
    assert temperature_schedule(500) == 1.0
    with pytest.raises(ValueError, match="epoch"):
        temperature_schedule(-1)

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


def test_temperature_changes_outputs():
    model = _calibrated_model(4, attention_gain=30.0)
    x = torch.randn(1, 1, 128, 64)
    with torch.no_grad():
        at_one = model(x)
        model.temperature = 30.0
        at_thirty = model(x)
        model.temperature = 1.0
        again = model(x)
    assert not torch.allclose(at_one, at_thirty, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(at_one, again)


def test_model_argument_errors():
    from fastast_plugin.dymn import DyMN

    with pytest.raises(ValueError, match="num_classes.*0"):
        DyMN(num_classes=0)
    with pytest.raises(ValueError, match="strides"):
        DyMN(strides=(2, 2, 2))
    with pytest.raises(ValueError, match=r"\[batch, 1, n_mels, time\].*\(2, 128, 64\)"):
        DyMN(width_mult=0.4)(torch.randn(2, 128, 64))


# ---------------------------------------------------------------------------
# Checkpoint loading
# ---------------------------------------------------------------------------


def test_checkpoint_registry():
    from fastast_plugin.dymn import DYMN_BASE_URL, DYMN_CHECKPOINTS

    assert DYMN_BASE_URL == "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"
    assert DYMN_CHECKPOINTS["dymn04_as"] == "dymn04_as.pt"
    assert DYMN_CHECKPOINTS["dymn10_as"] == "dymn10_as.pt"
    assert DYMN_CHECKPOINTS["dymn20_as"] == "dymn20_as_mAP_493.pt"
    assert DYMN_CHECKPOINTS["dymn10_im"] == "dymn10_im.pt"
    assert all(not f.startswith(" ") for f in DYMN_CHECKPOINTS.values())


def test_load_by_name(tmp_path):
    from fastast_plugin.dymn import load_dymn

    state = fake_state_dict(0.4)
    torch.save(state, tmp_path / "dymn04_as.pt")
    model = load_dymn("dymn04_as", tmp_path)
    assert model.width_mult == 0.4 and model.num_classes == 527
    assert model.temperature == 1.0
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    # ImageNet weights were trained to a final temperature of 30.
    torch.save(state, tmp_path / "dymn04_im.pt")
    assert load_dymn("dymn04_im", tmp_path).temperature == 30.0
    assert load_dymn("dymn04_im", tmp_path, temperature=2.0).temperature == 2.0


def test_num_classes_mismatch_drops_head(tmp_path, caplog):
    from fastast_plugin.dymn import load_dymn

    state = fake_state_dict(0.4)
    torch.save(state, tmp_path / "dymn04_as.pt")
    with caplog.at_level(logging.INFO, logger="fastast_plugin.dymn"):
        model = load_dymn("dymn04_as", tmp_path, num_classes=50)
    assert "classifier" in caplog.text and "527" in caplog.text
    loaded = model.state_dict()
    assert loaded["classifier.5.weight"].shape == (50, 512)
    assert loaded["classifier.5.bias"].abs().sum() == 0  # fresh head
    for key, value in state.items():
        if not key.startswith("classifier.5."):
            assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 128, 32)).shape == (2, 50)


def test_missing_file_and_download(tmp_path, monkeypatch):
    from fastast_plugin import dymn

    with pytest.raises(FileNotFoundError, match="dymn20_as_mAP_493.pt"):
        dymn.load_dymn("dymn20_as", tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        dymn.load_dymn("dymn30_as", tmp_path)

    calls = []

    def fake_download(url, dst, progress=True):
        calls.append(url)
        torch.save(fake_state_dict(0.4), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = dymn.load_dymn("dymn04_as", tmp_path / "new", download=True)
    assert calls == [dymn.DYMN_BASE_URL + "dymn04_as.pt"]
    assert model.num_classes == 527
    # Present files are never downloaded again.
    dymn.load_dymn("dymn04_as", tmp_path / "new", download=True)
    assert len(calls) == 1


def test_bad_checkpoints_give_clear_errors(tmp_path):
    from fastast_plugin.dymn import DyMN, load_dymn, load_dymn_state_dict

    state = fake_state_dict(0.4)
    path = tmp_path / "dymn04_as.pt"

    broken = dict(state)
    del broken["layers.5.depth_conv.weight"]
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match=r"missing keys \(1\): layers\.5\.depth_conv\.weight"):
        load_dymn("dymn04_as", tmp_path)

    broken = dict(state)
    broken["layers.7.proj_conv.weight"] = torch.zeros(1, 1, 4, 7)
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(RuntimeError) as err:
        load_dymn("dymn04_as", tmp_path)
    expected = "layers.7.proj_conv.weight: checkpoint (1, 1, 4, 7) vs model (1, 1, 4, 2560)"
    assert expected in str(err.value)
    assert "unexpected keys (1): extra.weight" in str(err.value)

    torch.save({"in_c.0.weight": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_dymn("dymn04_as", tmp_path)

    torch.save({**state, "epoch": 3}, path)
    with pytest.raises(ValueError, match="'epoch'"):
        load_dymn("dymn04_as", tmp_path)

    # A dymn10 file under a dymn04 model: every mismatch is reported.
    with pytest.raises(RuntimeError, match="shape mismatches"):
        load_dymn_state_dict(DyMN(width_mult=0.4), fake_state_dict(1.0))
    # Without allow_new_head a different class count is an error too.
    with pytest.raises(RuntimeError, match="classifier.5.weight"):
        load_dymn_state_dict(DyMN(width_mult=0.4, num_classes=10), state)


# ---------------------------------------------------------------------------
# Front-end
# ---------------------------------------------------------------------------


def _mel_centres(n_mels=128, fmin=0.0, fmax=15000.0):
    mel = lambda f: 1127.0 * math.log(1 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (math.exp(m / 1127.0) - 1)  # noqa: E731
    delta = (mel(fmax) - mel(fmin)) / (n_mels + 1)
    edges = [inv(mel(fmin) + i * delta) for i in range(n_mels + 2)]
    return edges


def test_frame_counts():
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    assert frontend.num_frames(32000) == 100
    assert frontend.num_frames(160000) == 500
    assert frontend.num_frames(320000) == 1000
    assert frontend(torch.randn(2, 32000)).shape == (2, 1, 128, 100)
    assert frontend(torch.randn(1, 320000)).shape == (1, 1, 128, 1000)
    # 1 + (L - 1) // 320 in general.
    for length in (1000, 32001, 32321, 48000):
        assert frontend(torch.randn(1, length)).shape[-1] == 1 + (length - 1) // 320


def test_mel_filter_properties():
    from fastast_plugin.dymn import DyMNFrontEnd, kaldi_mel_banks

    banks = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0)
    assert banks.shape == (128, 513) and banks.dtype == torch.float32
    assert (banks >= 0).all() and (banks <= 1).all()
    assert (banks[:, -1] == 0).all()  # Nyquist column
    edges = _mel_centres()
    freqs = torch.arange(513) * 32000 / 1024
    for i in range(128):
        # Non-zero only strictly between the filter's edges (up to float32
        # round-off at the very edge, as in Kaldi).
        assert banks[i].max() > 0.1
        outside = (freqs <= edges[i]) | (freqs >= edges[i + 2])
        assert banks[i][outside].max() < 1e-5
        peak = freqs[banks[i].argmax()]
        assert abs(peak - edges[i + 1]) <= 31.25
    # No area normalisation: the triangles peak at 1, and a filter whose
    # half-width is >= 10 FFT bins has a bin within 1/20 of it of the apex.
    peaks = banks.max(dim=1).values
    wide = [
        i for i in range(128)
        if min(edges[i + 1] - edges[i], edges[i + 2] - edges[i + 1]) >= 312.5
    ]
    assert len(wide) >= 7 and (peaks[wide] > 0.94).all()
    assert (peaks > 0.18).all() and (peaks <= 1).all()
    assert banks[:, freqs >= 15000].max() < 1e-5
    # Documented geometry: centres 17.1 Hz .. 14.6 kHz, 24 of them >= 8 kHz.
    assert round(edges[1], 1) == 17.1 and round(edges[128] / 1000, 1) == 14.6
    assert sum(c >= 8000 for c in edges[1:129]) == 24

    # Same as Kaldi's (torchaudio) banks with a zero Nyquist column.
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    reference, _ = kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0, 100.0, -500.0, 1.0)
    torch.testing.assert_close(banks[:, :512], reference, rtol=0, atol=1e-6)

    frontend = DyMNFrontEnd().eval()
    torch.testing.assert_close(frontend.mel_banks, banks)


def test_frontend_values():
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    assert frontend.silence_value == pytest.approx(SILENCE)
    silence = frontend(torch.zeros(1, 32000))
    torch.testing.assert_close(silence, torch.full_like(silence, SILENCE))
    assert abs(SILENCE - (-1.4026)) < 1e-3

    # A 1 kHz tone lights up the filter centred nearest to 1 kHz.
    centres = _mel_centres()[1:129]
    nearest = min(range(128), key=lambda i: abs(centres[i] - 1000.0))
    t = torch.arange(32000) / 32000
    tone = frontend(0.1 * torch.sin(2 * math.pi * 1000 * t)[None])[0, 0, :, 5:-5]
    assert abs(int(tone.mean(dim=1).argmax()) - nearest) <= 1

    # Manual reference: pre-emphasis, STFT with a symmetric Hann(800)
    # centred in 1024 points, power, mel, log, (x + 4.5) / 5.
    x = torch.randn(2, 8000, dtype=torch.float64)
    emphasised = x[:, 1:] - 0.97 * x[:, :-1]
    window = torch.zeros(1024, dtype=torch.float64)
    window[112:912] = torch.hann_window(800, periodic=False, dtype=torch.float64)
    padded = F.pad(emphasised.unsqueeze(1), (512, 512), mode="reflect").squeeze(1)
    frames = padded.unfold(1, 1024, 320) * window
    power = torch.fft.rfft(frames, dim=-1).abs().square()
    mel = power @ frontend.mel_banks.double().T
    expected = ((torch.log(mel + 1e-5) + 4.5) / 5).transpose(1, 2).unsqueeze(1)
    torch.testing.assert_close(frontend(x.float()), expected.float(), rtol=1e-4, atol=1e-4)


def test_frontend_eval_deterministic_and_training_jitter(monkeypatch):
    from fastast_plugin import dymn

    frontend = dymn.DyMNFrontEnd()
    x = torch.randn(2, 16000)
    frontend.eval()
    torch.testing.assert_close(frontend(x), frontend(x), rtol=0, atol=0)

    seen = []
    real = dymn.kaldi_mel_banks

    def spy(n_mels, n_fft, sample_rate, fmin, fmax):
        seen.append((fmin, fmax))
        return real(n_mels, n_fft, sample_rate, fmin, fmax)

    monkeypatch.setattr(dymn, "kaldi_mel_banks", spy)
    frontend.train()
    torch.manual_seed(0)
    outputs = [frontend(x) for _ in range(60)]
    assert len(seen) == 60  # one band per batch
    assert all(0 <= fmin <= 9 and 14001 <= fmax <= 16000 for fmin, fmax in seen)
    assert len({fmax for _, fmax in seen}) > 10
    assert not torch.allclose(outputs[0], outputs[1])
    # No masking by default: no all-zero (0.9 after normalisation) bands.
    assert not any(bool((o == 0.9).all(dim=-1).any()) for o in outputs)

    frontend.eval()
    seen.clear()
    frontend(x)
    assert seen == []


def test_frontend_masks_in_training_only():
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd(freqm=40, timem=40)
    x = torch.randn(4, 32000)
    torch.manual_seed(1)
    out = frontend.train()(x)[:, 0]
    masked_value = (0.0 + 4.5) / 5
    freq_masked = (out == masked_value).all(dim=2).sum(dim=1)
    time_masked = (out == masked_value).all(dim=1).sum(dim=1)
    assert (freq_masked < 40).all() and (time_masked < 40).all()
    assert freq_masked.sum() > 0 and time_masked.sum() > 0
    assert len(set(freq_masked.tolist())) > 1 or len(set(time_masked.tolist())) > 1  # iid
    out = frontend.eval()(x)[:, 0]
    assert not (out == masked_value).any()


def test_frontend_independent_of_batch_composition():
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    torch.manual_seed(0)
    short = torch.randn(20000)
    long = torch.randn(48000)
    alone = frontend(short[None])
    batch = torch.zeros(2, 48000)
    batch[0, :20000] = short
    batch[1] = long
    out = frontend(batch, torch.tensor([20000 / 48000, 1.0]))
    frames = alone.shape[-1]
    assert frames == 1 + 19999 // 320
    torch.testing.assert_close(out[0, :, :, :frames], alone[0], rtol=0, atol=1e-5)
    padded = out[0, :, :, frames:]
    torch.testing.assert_close(padded, torch.full_like(padded, SILENCE))
    torch.testing.assert_close(out[1:], frontend(long[None]), rtol=0, atol=1e-5)
    # Garbage in the padding does not leak into the clip.
    batch[0, 20000:] = 5.0
    torch.testing.assert_close(frontend(batch, torch.tensor([20000 / 48000, 1.0])), out)


def test_frontend_resamples_16k():
    import torchaudio

    from fastast_plugin.dymn import DyMNFrontEnd

    frontend16 = DyMNFrontEnd(orig_sample_rate=16000).eval()
    frontend32 = DyMNFrontEnd().eval()
    assert isinstance(frontend16.resampler, torchaudio.transforms.Resample)
    assert frontend32.resampler is None
    assert len(frontend16.state_dict()) == 0
    assert frontend16.num_frames(16000) == 100

    t16 = torch.arange(16000) / 16000
    t32 = torch.arange(32000) / 32000
    # A 1 kHz tone at 16 kHz looks like the same tone at 32 kHz.
    tone16 = frontend16(0.3 * torch.sin(2 * math.pi * 1000 * t16)[None])
    tone32 = frontend32(0.3 * torch.sin(2 * math.pi * 1000 * t32)[None])
    assert tone16.shape == tone32.shape == (1, 1, 128, 100)
    strong = tone32[..., 5:-5] > 0
    torch.testing.assert_close(
        tone16[..., 5:-5][strong], tone32[..., 5:-5][strong], rtol=0, atol=0.02
    )

    # Band-limited: a 7 kHz tone leaves no 9 kHz image (naive upsampling
    # by sample repetition does), and nothing above 8 kHz.
    centres = _mel_centres()[1:129]
    at_9k = min(range(128), key=lambda i: abs(centres[i] - 9000.0))
    at_7k = min(range(128), key=lambda i: abs(centres[i] - 7000.0))
    high = 0.5 * torch.sin(2 * math.pi * 7000 * t16)[None]
    proper = frontend16(high)[0, 0, :, 5:-5]
    naive = frontend32(high.repeat_interleave(2, dim=1))[0, 0, :, 5:-5]
    assert proper[at_7k].mean() > 2.0
    assert proper[at_9k].max() < SILENCE + 0.1
    assert naive[at_9k].mean() > 2.0
    left_edges = _mel_centres()[:128]
    above_8k = [i for i in range(128) if left_edges[i] > 8000]
    assert len(above_8k) >= 20
    assert proper[above_8k].max() < SILENCE + 0.1

    # Relative lengths refer to the 16 kHz input.
    batch = torch.zeros(2, 16000)
    batch[0, :8000] = torch.randn(8000)
    batch[1] = torch.randn(16000)
    out = frontend16(batch, torch.tensor([0.5, 1.0]))
    alone = frontend16(batch[:1, :8000])
    torch.testing.assert_close(out[:1, ..., : alone.shape[-1]], alone, rtol=0, atol=1e-5)


def test_frontend_fp32_under_autocast():
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd().eval()
    x = torch.randn(2, 16000)
    reference = frontend(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = frontend(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, frontend(x.bfloat16().float()))
    assert reference.dtype == torch.float32


def test_frontend_argument_errors():
    from fastast_plugin.dymn import DyMNFrontEnd

    with pytest.raises(ValueError, match="hop_length.*0"):
        DyMNFrontEnd(hop_length=0)
    with pytest.raises(ValueError, match="fmax"):
        DyMNFrontEnd(fmax=16000.0)
    frontend = DyMNFrontEnd().eval()
    with pytest.raises(ValueError, match=r"\[batch, samples\].*\(16000,\)"):
        frontend(torch.randn(16000))
    with pytest.raises(ValueError, match="wav_lens"):
        frontend(torch.randn(2, 16000), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least 514 samples"):
        frontend(torch.randn(1, 300))


def test_frontend_then_dymn():
    from fastast_plugin.dymn import DyMN, DyMNFrontEnd

    frontend = DyMNFrontEnd(orig_sample_rate=16000).eval()
    model = DyMN(num_classes=50, width_mult=0.4).eval()
    with torch.no_grad():
        mel = frontend(torch.randn(2, 16000 * 5))
        assert mel.shape == (2, 1, 128, 500)
        assert model.forward_features(mel).shape == (2, 384, 4, 16)
        assert model(mel).shape == (2, 50)


def test_device_parity(device):
    from fastast_plugin.dymn import DyMNFrontEnd

    frontend = DyMNFrontEnd(orig_sample_rate=16000).eval()
    model = _calibrated_model(5)
    wavs = torch.randn(2, 16000)
    wav_lens = torch.tensor([1.0, 0.75])
    with torch.no_grad():
        reference = model(frontend(wavs, wav_lens))
        frontend, model = frontend.to(device), model.to(device)
        mel = frontend(wavs.to(device), wav_lens.to(device))
        out = model(mel)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            assert frontend(wavs.to(device), wav_lens.to(device)).dtype == torch.float32
    assert mel.device.type == torch.device(device).type
    torch.testing.assert_close(out.cpu(), reference, rtol=1e-3, atol=1e-3)
