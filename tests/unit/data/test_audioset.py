"""Unit tests for fastast_plugin.data.audioset: segment lists, class index, clip names, multi-label items.

Authors
 * fastast developers 2026
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from fastast_plugin.data.audio import load_audio
from fastast_plugin.data.audioset import (
    multi_hot,
    parse_clip_name,
    read_class_labels,
    read_segments,
)

HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=2, num_segs=2, num_unique_labels=3, num_positive_labels=3\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Y--PJHxphWEs_30.000_40.000.wav", ("--PJHxphWEs", 30.0, "Y<YTID>_<start>_<end>")),
        ("a/b/Y-0_aB9xYz1w_0.500_10.500.flac", ("-0_aB9xYz1w", 0.5, "Y<YTID>_<start>_<end>")),
        ("--PJHxphWEs_30500.ogg", ("--PJHxphWEs", 30.5, "<YTID>_<start_ms>")),
        ("--PJHxphWEs.mp3", ("--PJHxphWEs", None, "<YTID>")),
        ("YYabcdefghij.wav", ("Yabcdefghij", None, "Y<YTID>")),  # an id starting with Y
        ("Yabcdefghij.wav", ("Yabcdefghij", None, "<YTID>")),
    ],
)
def test_every_naming_scheme_gives_the_youtube_id_and_start(name, expected):
    assert tuple(parse_clip_name(name)) == expected


@pytest.mark.parametrize(
    "name", ["short.wav", "Y--PJHxphWEs_30_40.wav", "--PJHxphWEs_3.5.wav", "x" * 13]
)
def test_other_names_match_no_scheme(name):
    assert parse_clip_name(name) is None


def test_segment_lists_parse_the_real_format_and_errors_name_file_and_line(tmp_path):
    path = tmp_path / "balanced_train_segments.csv"
    path.write_text(
        HEADER + '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
        '-0RWZT-miFs, 420.000, 430.000, "/m/03v3yw"\n'
    )
    segments = read_segments(path)
    assert [(s.ytid, s.start, s.end, s.labels) for s in segments] == [
        ("--PJHxphWEs", 30.0, 40.0, ("/m/09x0r", "/t/dd00088")),
        ("-0RWZT-miFs", 420.0, 430.0, ("/m/03v3yw",)),
    ]
    path.write_text(HEADER + '--PJHxphWEs, 30.000, "/m/09x0r"\n')
    with pytest.raises(ValueError, match=r"balanced_train_segments.csv, line 4: expected"):
        read_segments(path)
    path.write_text(HEADER + '--PJHxphWEs, 0.0, 10.0, "/m/a"\n--PJHxphWEs, 5.0, 15.0, "/m/a"\n')
    with pytest.raises(ValueError, match="line 5: YTID --PJHxphWEs is listed twice"):
        read_segments(path)


def test_class_index_and_multi_hot(tmp_path):
    path = tmp_path / "class_labels_indices.csv"
    path.write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0a,"Male speech, man"\n2,/m/0b,Dog\n'
    )
    classes = read_class_labels(path)
    assert classes["/m/0a"] == (1, "Male speech, man")
    assert multi_hot(["/m/0b", "/m/09x0r"], classes).tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="'/m/zz' is not in the class index"):
        multi_hot("/m/zz", classes)
    path.write_text("index,mid,display_name\n1,/m/a,A\n")
    with pytest.raises(ValueError, match=r"indices must be 0 to 0, each once; got \[1\]"):
        read_class_labels(path)
    path.write_text("index,mid,display_name\n1,/m/b,B\n0,/m/a,A\n0,/m/c,C\n")
    with pytest.raises(ValueError, match=r"indices must be 0 to 2, each once; got \[0, 0, 1\]"):
        read_class_labels(path)
    path.write_text("index,mid,display_name\n1,/m/b,B\n0,/m/a,A\n")  # any row order
    assert read_class_labels(path) == {"/m/a": (0, "A"), "/m/b": (1, "B")}


def test_clips_are_mixed_to_mono_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    sf.write(str(tmp_path / "s.flac"), np.stack([left, right], 1), 44100)
    sig = load_audio(open(tmp_path / "s.flac", "rb"), 16000)  # as a shard member
    assert sig.shape == (16000,)
    reference = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    torch.testing.assert_close(
        sig[100:-100], torch.tensor(reference[100:-100], dtype=torch.float32), atol=2e-3, rtol=0
    )
    (tmp_path / "bad.wav").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="audio .*bad.wav.* unreadable"):
        load_audio(open(tmp_path / "bad.wav", "rb"), 16000)
