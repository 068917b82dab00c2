"""Unit tests for fastast_plugin.models.merge (ToMe token merging).

Authors
 * fastast developers 2026
"""

import math

import pytest
import torch

from fastast_plugin.models.merge import (
    _do_nothing,
    bipartite_soft_matching,
    keep_ratio_schedule,
    merge_source,
    merge_wavg,
    parse_r,
    token_counts,
)

PROTECTION = [(False, False), (True, False), (False, True), (True, True)]


# ---------------------------------------------------------------------------
# Independent reference: ToMe's algorithm written out with Python loops.
# ---------------------------------------------------------------------------


def _reference_groups(metric, r, class_token, distill_token):
    """Original token indices in each output token, in ToMe's output order.

    ``metric`` is a list of per-token lists of floats (one batch item).
    """
    n = len(metric)
    protected = int(class_token) + int(distill_token)
    r = max(0, min(r, (n - protected) // 2))
    a_tokens = list(range(0, n, 2))
    b_tokens = list(range(1, n, 2))
    unit = []
    for vector in metric:
        norm = math.sqrt(sum(v * v for v in vector))
        unit.append([v / norm for v in vector])

    best = []  # (score, index into b_tokens) per A token
    for ai, ta in enumerate(a_tokens):
        best_score, best_j = -math.inf, 0
        for bj, tb in enumerate(b_tokens):
            score = sum(p * q for p, q in zip(unit[ta], unit[tb]))
            if (class_token and ai == 0) or (distill_token and bj == 0):
                score = -math.inf
            if score > best_score:
                best_score, best_j = score, bj
        best.append((best_score, best_j))

    order = sorted(range(len(a_tokens)), key=lambda ai: -best[ai][0])
    sources, unmerged = order[:r], order[r:]
    if class_token:
        unmerged = sorted(unmerged)
    b_groups = [[tb] for tb in b_tokens]
    for ai in sources:
        b_groups[best[ai][1]].append(a_tokens[ai])
    unm_groups = [[a_tokens[ai]] for ai in unmerged]
    if distill_token:
        return [unm_groups[0], b_groups[0]] + unm_groups[1:] + b_groups[1:]
    return unm_groups + b_groups


def _reference_merge(x, metric, size, r, class_token, distill_token):
    """Size-weighted ToMe merge of a batch, item by item, in float64."""
    out_x, out_size = [], []
    for xb, mb, sb in zip(x.tolist(), metric.tolist(), size.tolist()):
        rows, sizes = [], []
        for group in _reference_groups(mb, r, class_token, distill_token):
            weight = sum(sb[t][0] for t in group)
            channels = range(len(xb[0]))
            rows.append([sum(xb[t][c] * sb[t][0] for t in group) / weight for c in channels])
            sizes.append([weight])
        out_x.append(rows)
        out_size.append(sizes)
    return (
        torch.tensor(out_x, dtype=torch.float64),
        torch.tensor(out_size, dtype=torch.float64),
    )


def _assert_no_near_ties(metric, class_token, distill_token, gap=1e-5):
    """Ties make ToMe's order ambiguous; random test inputs must avoid them."""
    unit = torch.nn.functional.normalize(metric.double(), dim=-1)
    scores = unit[:, ::2] @ unit[:, 1::2].transpose(-1, -2)
    if distill_token:
        scores[:, :, 0] = -math.inf
    if scores.shape[-1] > 1:
        top2 = scores.topk(2, dim=-1).values
        finite = torch.isfinite(top2[..., 1])
        assert ((top2[..., 0] - top2[..., 1])[finite] > gap).all()
    node_max = scores.max(dim=-1).values
    if class_token:
        node_max = node_max[:, 1:]
    node_max = node_max.sort(dim=-1).values
    diffs = node_max[:, 1:] - node_max[:, :-1]
    assert (diffs[torch.isfinite(diffs)] > gap).all()


# ---------------------------------------------------------------------------
# Hand-built example: cls, dist and six patches with known cosine-1 pairs.
# ---------------------------------------------------------------------------


def _hand_built(dtype, device):
    """Metric where token 2 ~ 5 and 3 ~ 6 (cosine 1), token 4 prefers 7.

    The cls metric equals token 3's and the dist metric equals token 2's,
    so only the protection keeps cls from being a source and dist from
    being a destination. A = tokens 0, 2, 4, 6; B = tokens 1, 3, 5, 7.
    """
    e = torch.eye(8, dtype=torch.float64)
    metric = torch.stack([e[3], e[2], e[2], e[3], e[4] + 0.1 * e[7], e[2], e[3], e[7]])
    x = torch.arange(8, dtype=torch.float64).view(1, 8, 1) * 2.0
    return (
        metric.unsqueeze(0).to(dtype=dtype, device=device),
        x.to(dtype=dtype, device=device),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hand_built_merge_r2(device, dtype):
    metric, x = _hand_built(dtype, device)
    merge, _ = bipartite_soft_matching(metric, 2, class_token=True, distill_token=True)
    out, size = merge_wavg(merge, x)
    # [cls, dist, unmerged 4, dst 3 (+6), dst 5 (+2), dst 7]
    expected = torch.tensor([0.0, 2.0, 8.0, 9.0, 7.0, 14.0])
    assert out.dtype == dtype
    assert out.flatten().cpu().float().tolist() == expected.tolist()
    assert size.flatten().cpu().tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 1.0]


def test_hand_built_merge_r_capped(device):
    metric, x = _hand_built(torch.float32, device)
    merge, _ = bipartite_soft_matching(metric, 99, class_token=True, distill_token=True)
    out, size = merge_wavg(merge, x)
    # cap (8 - 2) // 2 = 3: token 4 now merges into 7 as well.
    assert out.flatten().tolist() == [0.0, 2.0, 9.0, 7.0, 11.0]
    assert size.flatten().tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]


def test_hand_built_without_protection_cls_merges():
    # Sanity check that the example exercises the protection: unprotected,
    # cls (metric = token 3's) is a source like any other token.
    metric, x = _hand_built(torch.float32, "cpu")
    source = merge_source(bipartite_soft_matching(metric, 3)[0], x)
    holders = source[0, :, 0].nonzero().flatten().tolist()
    assert len(holders) == 1 and source[0, holders[0]].sum() > 1


def test_protected_tokens_stay_first_with_sizes():
    # Heavier sizes must not change which tokens are protected.
    torch.manual_seed(0)
    metric = torch.randn(3, 21, 8)
    x = torch.randn(3, 21, 5)
    size = torch.randint(1, 5, (3, 21, 1)).float()
    for _ in range(4):
        merge, _ = bipartite_soft_matching(metric, 4, True, True)
        new_x, new_size = merge_wavg(merge, x, size)
        assert torch.equal(new_x[:, :2], x[:, :2])
        assert torch.equal(new_size[:, :2], size[:, :2])
        metric = merge(metric)
        x, size = new_x, new_size


# ---------------------------------------------------------------------------
# Equivalence with the loop reference on random inputs.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_tokens", [15, 16])
@pytest.mark.parametrize("class_token,distill_token", PROTECTION)
@pytest.mark.parametrize("r", [3, 50])
def test_matches_loop_reference(seed, num_tokens, class_token, distill_token, r, device):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, num_tokens, 6, generator=gen)
    size = torch.ones(3, num_tokens, 1)
    ref_x, ref_size = x.double(), size.double()
    x, size = x.to(device), size.to(device)
    for _ in range(3):
        metric = torch.randn(3, x.shape[1], 16, generator=gen)
        _assert_no_near_ties(metric, class_token, distill_token)
        merge, _ = bipartite_soft_matching(metric.to(device), r, class_token, distill_token)
        x, size = merge_wavg(merge, x, size)
        ref_x, ref_size = _reference_merge(ref_x, metric, ref_size, r, class_token, distill_token)
        assert x.shape == ref_x.shape
        torch.testing.assert_close(x.cpu().double(), ref_x, rtol=0, atol=1e-6)
        torch.testing.assert_close(size.cpu().double(), ref_size, rtol=0, atol=0)


def test_bf16_runs_and_keeps_counts(device):
    torch.manual_seed(0)
    metric = torch.randn(2, 40, 16, device=device, dtype=torch.bfloat16)
    x = torch.randn(2, 40, 8, device=device, dtype=torch.bfloat16)
    merge, unmerge = bipartite_soft_matching(metric, 10, True, True)
    out, size = merge_wavg(merge, x)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 30, 8)
    assert size.dtype == torch.float32
    assert size.sum(dim=1).flatten().tolist() == [40.0, 40.0]
    assert unmerge(out).shape == x.shape


# ---------------------------------------------------------------------------
# Source tracing, unmerge, gradients.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("class_token,distill_token", PROTECTION)
def test_merge_source_partitions_original_tokens(class_token, distill_token):
    torch.manual_seed(1)
    x = torch.randn(3, 25, 4)
    size, source = None, None
    for r in [5, 4, 3, 50]:
        metric = torch.randn(3, x.shape[1], 8)
        merge, _ = bipartite_soft_matching(metric, r, class_token, distill_token)
        source = merge_source(merge, x, source)
        x, size = merge_wavg(merge, x, size)
    assert source.shape == (3, x.shape[1], 25)
    assert set(source.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(source.sum(dim=1), torch.ones(3, 25))
    assert torch.equal(source.sum(dim=-1, keepdim=True), size)
    if class_token:
        assert torch.equal(source[:, 0, 0], torch.ones(3))
    if class_token and distill_token:
        assert torch.equal(source[:, 1, 1], torch.ones(3))


@pytest.mark.parametrize("num_tokens", [14, 15])
@pytest.mark.parametrize("class_token,distill_token", PROTECTION)
def test_unmerge_restores_original_positions(num_tokens, class_token, distill_token, device):
    torch.manual_seed(2)
    metric = torch.randn(3, num_tokens, 8, device=device)
    x = torch.randn(3, num_tokens, 5, device=device)
    merge, unmerge = bipartite_soft_matching(metric, 4, class_token, distill_token)
    merged = merge(x)
    restored = unmerge(merged)
    source = merge_source(merge, x)
    assert restored.shape == x.shape
    for b in range(3):
        for j in range(merged.shape[1]):
            members = source[b, j].nonzero().flatten().tolist()
            for t in members:
                assert torch.equal(restored[b, t], merged[b, j])
            if len(members) == 1:
                assert torch.equal(restored[b, members[0]], x[b, members[0]])
    # r sources and between 1 and r destinations changed; the rest are intact.
    changed = (restored != x).any(dim=-1).sum(dim=-1)
    assert ((changed >= 4 + 1) & (changed <= 2 * 4)).all()
    if class_token:
        assert torch.equal(restored[:, 0], x[:, 0])
    if distill_token:
        assert torch.equal(restored[:, 1], x[:, 1])


def test_unmerge_of_index_map_is_consistent_with_merge():
    # unmerge(merge(positions, "amax")) maps every token to its group's
    # largest original position; positions kept alone map to themselves.
    torch.manual_seed(3)
    metric = torch.randn(2, 12, 8)
    positions = torch.arange(12.0).view(1, 12, 1).expand(2, 12, 1)
    for class_token, distill_token in PROTECTION:
        merge, unmerge = bipartite_soft_matching(metric, 3, class_token, distill_token)
        mapped = unmerge(merge(positions, mode="amax")).squeeze(-1)
        assert (mapped >= positions.squeeze(-1)).all()
        assert (mapped != positions.squeeze(-1)).sum(dim=-1).tolist() == [3, 3]


def test_gradient_flows_through_merge_wavg(device):
    torch.manual_seed(4)
    metric = torch.randn(2, 11, 8, device=device)
    x = torch.randn(2, 11, 3, device=device, requires_grad=True)
    merge, unmerge = bipartite_soft_matching(metric, 3, class_token=True)
    out, size = merge_wavg(merge, x)
    out.sum().backward()
    # Each input contributes 1 / (its group size) to the group's mean.
    expected = (1.0 / unmerge(size)).expand_as(x)
    torch.testing.assert_close(x.grad, expected)


def test_merge_modes_inputs_untouched_and_layouts(device):
    torch.manual_seed(6)
    metric = torch.randn(2, 13, 8, device=device)
    x = torch.randn(2, 6, 13, device=device).transpose(1, 2)  # non-contiguous
    x_before = x.clone()
    merge, _ = bipartite_soft_matching(metric, 4, class_token=True)
    mean = merge(x)
    assert torch.equal(x, x_before)  # merging never writes into its input
    assert torch.equal(mean, merge(x.contiguous()))
    wavg, _ = merge_wavg(merge, x)
    torch.testing.assert_close(mean, wavg)
    # amax of a one-hot column is 1 exactly where that token ended up.
    source = merge_source(merge, x)
    one_hot = torch.eye(13, device=device).expand(2, 13, 13)
    assert torch.equal(merge(one_hot, "amax"), source)


def test_merge_rejects_wrong_shapes():
    merge, unmerge = bipartite_soft_matching(torch.randn(2, 10, 4), 2)
    with pytest.raises(ValueError, match=r"merge expects \[2, 10, channels\]"):
        merge(torch.randn(2, 9, 4))
    with pytest.raises(ValueError, match=r"merge expects .*got shape \(3, 10, 4\)"):
        merge(torch.randn(3, 10, 4))
    with pytest.raises(ValueError, match=r"unmerge expects \[2, 8, channels\]"):
        unmerge(torch.randn(2, 10, 4))


# ---------------------------------------------------------------------------
# r cap and identity.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_tokens,class_token,distill_token,expected",
    [
        (10, True, True, 6),
        (10, False, False, 5),
        (3, False, False, 2),
        (3, True, False, 2),
        (3, True, True, 3),
        (2, True, True, 2),
        (1, False, False, 1),
    ],
)
def test_huge_r_is_capped(num_tokens, class_token, distill_token, expected):
    metric = torch.randn(2, num_tokens, 4)
    merge, unmerge = bipartite_soft_matching(metric, 10**6, class_token, distill_token)
    out, size = merge_wavg(merge, metric)
    assert out.shape[1] == expected
    assert unmerge(out).shape == metric.shape


@pytest.mark.parametrize("r", [0, -1])
def test_r_zero_is_identity(r):
    x = torch.randn(2, 9, 4)
    merge, unmerge = bipartite_soft_matching(x, r, class_token=True)
    assert merge is _do_nothing and unmerge is _do_nothing
    assert merge(x) is x and merge(x, mode="sum") is x and unmerge(x) is x
    out, size = merge_wavg(merge, x)
    assert out is x and size is None


def test_bipartite_soft_matching_argument_errors():
    with pytest.raises(ValueError, match="metric must be"):
        bipartite_soft_matching(torch.randn(9, 4), 2)
    with pytest.raises(TypeError, match="r must be an int, got 2.0"):
        bipartite_soft_matching(torch.randn(1, 9, 4), 2.0)


# ---------------------------------------------------------------------------
# Schedules.
# ---------------------------------------------------------------------------


def test_parse_r_int_and_list():
    assert parse_r(3, 7) == [7, 7, 7]
    assert parse_r(5, [4, 3, 2]) == [4, 3, 2, 0, 0]
    assert parse_r(3, (1, 2, 3)) == [1, 2, 3]
    assert parse_r(3, [16, 8]) == [16, 8, 0]
    assert parse_r(0, 5) == []


def test_parse_r_schedule():
    expected = [32, 29, 26, 23, 20, 17, 14, 11, 8, 5, 2, 0]
    assert parse_r(12, (16, -1)) == expected
    assert parse_r(12, (16, -1.0)) == expected
    assert parse_r(12, [16, -1.0]) == expected  # YAML has no tuples
    assert parse_r(12, (16, 1.0)) == expected[::-1]
    assert parse_r(4, (8, 0.0)) == [8, 8, 8, 8]
    assert parse_r(1, (8, -1.0)) == [16]


def test_parse_r_errors():
    with pytest.raises(ValueError, match="r must be >= 0, got -1"):
        parse_r(4, -1)
    with pytest.raises(ValueError, match=r"r\[1\] must be >= 0, got -2"):
        parse_r(4, [3, -2])
    with pytest.raises(ValueError, match="r has 5 per-layer values.*num_layers=4"):
        parse_r(4, [1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"inflection\) must be .* \[-1, 1\], got 8"):
        parse_r(4, (16, 8))
    with pytest.raises(ValueError, match=r"r\[0\] \(the schedule's r\) must be >= 0"):
        parse_r(4, (-16, 0.5))
    with pytest.raises(TypeError, match="r must be a non-negative int, got 16.5"):
        parse_r(4, 16.5)
    with pytest.raises(TypeError, match="r must be a non-negative int, got True"):
        parse_r(4, True)
    with pytest.raises(TypeError, match=r"r\[0\] must be a non-negative int"):
        parse_r(4, ["16", 8, 2])
    with pytest.raises(ValueError, match="num_layers must be >= 0"):
        parse_r(-1, 4)


def test_token_counts_speechcommands():
    # SpeechCommands in AST (Gong et al., 2021): 128 frames, 16x16 patches at
    # stride 10 give a 12 x 12 grid, + cls + dist = 146 tokens; every block
    # merges min(r, (n - 2) // 2), the cap of ToMe's tome/merge.py
    # bipartite_soft_matching.
    r16 = [130, 114, 98, 82, 66, 50, 34, 18, 10, 6, 4, 3]
    r32 = [114, 82, 50, 26, 14, 8, 5, 4, 3, 3, 3, 3]
    assert token_counts(146, parse_r(12, 16)) == r16
    assert token_counts(146, parse_r(12, 32)) == r32
    assert token_counts(1214, parse_r(12, 16))[-1] == 1022
    assert token_counts(1214, parse_r(12, 32))[-1] == 830
    assert token_counts(5, [9, 9], num_protected=0) == [3, 2]
    assert token_counts(146, []) == []


def test_token_counts_match_bipartite_soft_matching():
    # The planning helpers and the matching share one cap.
    torch.manual_seed(5)
    x = torch.randn(1, 40, 4)
    r_list = [12, 8, 30, 30, 30]
    for r, expected in zip(r_list, token_counts(40, r_list)):
        merge, _ = bipartite_soft_matching(x, r, class_token=True, distill_token=True)
        x = merge(x)
        assert x.shape[1] == expected


def test_token_counts_errors():
    with pytest.raises(ValueError, match=r"r_list\[1\] must be >= 0, got -3"):
        token_counts(146, [4, -3])
    with pytest.raises(ValueError, match="num_tokens must be >= num_protected=2"):
        token_counts(1, [4])


def test_keep_ratio_schedule():
    r_list = keep_ratio_schedule(12, 1214, 0.89)
    counts = token_counts(1214, r_list)
    assert r_list[:3] == [133, 119, 106]
    assert counts[-1] == 301  # of 1214 (AudioSet's 1024 frames: 12 x 101 + 2)
    merged = [a - b for a, b in zip([1214] + counts, counts)]
    assert merged == r_list  # already within the cap: every block merges its r
    assert keep_ratio_schedule(3, 146, 1.0) == [0, 0, 0]
    # Tiny inputs saturate at half the unprotected tokens.
    assert keep_ratio_schedule(3, 10, 0.01) == [4, 2, 1]


@pytest.mark.parametrize("keep_ratio", [0.0, -0.5, 1.5, "0.9"])
def test_keep_ratio_schedule_errors(keep_ratio):
    with pytest.raises(ValueError, match="keep_ratio must be in"):
        keep_ratio_schedule(12, 1214, keep_ratio)


def test_export_path_of_the_sort_matches_eager_bit_for_bit(monkeypatch):
    """While exporting, the stable argsort becomes a full topk (ONNX TopK):
    the merge must stay exactly today's on inputs without tied scores."""
    torch.manual_seed(0)
    metric, x = torch.randn(3, 197, 16), torch.randn(3, 197, 24)
    size = torch.randint(1, 5, (3, 197, 1)).float()
    outputs = {}
    for exporting in (False, True):
        monkeypatch.setattr(torch.compiler, "is_exporting", lambda e=exporting: e)
        results = []
        for class_token, distill_token in ((False, False), (True, False), (True, True)):
            merge, unmerge = bipartite_soft_matching(metric, 40, class_token, distill_token)
            merged, merged_size = merge_wavg(merge, x, size)
            results += [merged, merged_size, unmerge(merged), merge(x, mode="amax")]
        outputs[exporting] = results
    for eager, exported in zip(outputs[False], outputs[True]):
        assert torch.equal(eager, exported)
