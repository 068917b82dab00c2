"""The YAML swap of the README: an existing SpeechBrain recipe turned into a ToMe-AST one.

The recipe here is written the way SpeechBrain's own classification recipes
are (UrbanSound8k's ``train_ecapa_tdnn.yaml`` / ``train.py``): its own Brain
computes SpeechBrain ``Fbank`` features of the batch's own length,
normalises them with ``InputNormalization``, calls
``embedding_model(feats, lens)`` and ECAPA's cosine ``Classifier`` with the
additive-angular-margin loss. Only the ``embedding_model`` block of its YAML
is swapped for ``fastast_plugin.models.ast.ASTEncoder``; the run must learn.

A second recipe is written the way SpeechBrain's ESC-50
``recipes/ESC50/classification/train.py`` is: STFT, magnitude, ``Filterbank``
log-mel features of the batch's own length, and a ``compute_forward`` that
takes any ``embedding_model`` with a ``config`` attribute for a Hugging Face
model (it then reads ``config.image_size``); anything else is called as
``embedding_model(feats)`` and its output fed to ECAPA's ``Classifier``.

Authors
 * fastast developers 2026
"""

import pytest
import speechbrain as sb
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml

from fastast_plugin.data.synthetic import CLASSES, synthesize
from fastast_plugin.models.ast import ASTClassifier, ASTEncoder, ASTHead
from fastast_plugin.models.dymn.model import DyMN
from fastast_plugin.models.features import KaldiFbank

RECIPE_YAML = """
n_mels: 80
n_classes: 4
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

# ---- the swapped block (was speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN) ----
embedding_model: !new:fastast_plugin.models.ast.ASTEncoder
    model_size: tiny224
    depth: 2
    input_fdim: !ref <n_mels>
    input_tdim: 112
    fstride: 16
    tstride: 16
    length_mode: native
    r: 2
# -----------------------------------------------------------------------------

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: !ref <n_classes>
compute_cost: !new:speechbrain.nnet.losses.LogSoftmaxWrapper
    loss_fn: !new:speechbrain.nnet.losses.AdditiveAngularMargin
        margin: 0.2
        scale: 30
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>
opt_class: !name:torch.optim.AdamW
    lr: 0.0005
"""


class SoundClassificationBrain(sb.core.Brain):
    """A recipe's own Brain, as in SpeechBrain's UrbanSound8k ``train.py``."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lens)
        embeddings = self.modules.embedding_model(feats, lens)
        return self.modules.classifier(embeddings)

    def compute_objectives(self, predictions, batch, stage):
        labels, _ = batch.label
        return self.hparams.compute_cost(predictions, labels)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.hparams.losses.append(stage_loss)


def _clips_of_several_lengths():
    """Clips of 0.5-1.1 s: every batch is padded to its own longest clip."""
    data = {
        f"{label}{i}": {
            "sig": torch.from_numpy(synthesize(label, 0.5 + 0.1 * (i % 7), seed=i)),
            "label": torch.tensor([CLASSES.index(label)]),
        }
        for i in range(8)
        for label in CLASSES
    }
    return sb.dataio.dataset.DynamicItemDataset(data, output_keys=["id", "sig", "label"])


def test_swapped_encoder_trains_on_speechbrain_features_of_the_batch_length(tmp_path):
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(RECIPE_YAML)
    hparams["losses"] = []
    train_set = _clips_of_several_lengths()
    brain = SoundClassificationBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    batch = next(iter(brain.make_dataloader(train_set, sb.Stage.TRAIN, batch_size=8, shuffle=True)))
    assert len(set(batch.sig[1].tolist())) > 1  # really padded batches of several lengths
    feats = hparams["compute_features"](batch.sig[0])
    assert feats.shape[1] < 112 and feats.shape[2] == 80  # their length, their mel bands
    brain.fit(range(8), train_set, train_loader_kwargs={"batch_size": 8, "shuffle": True})
    losses = hparams["losses"]
    assert losses[-1] < 0.5 * losses[0], losses


ESC50_RECIPE_YAML = """
sample_rate: 16000
n_fft: 1024
n_mels: 80
out_n_neurons: 4
spec_mag_power: 0.5
use_melspectra: True
compute_stft: !new:speechbrain.processing.features.STFT
    n_fft: !ref <n_fft>
    hop_length: 11.6
    win_length: 23.2
    sample_rate: !ref <sample_rate>
compute_fbank: !new:speechbrain.processing.features.Filterbank
    n_mels: !ref <n_mels>
    n_fft: !ref <n_fft>
    sample_rate: !ref <sample_rate>

# ---- the swapped block (was speechbrain.lobes.models.PIQ.Conv2dEncoder_v2) ----
embedding_model: !new:fastast_plugin.models.ast.ASTEncoder
    model_size: tiny224
    depth: 2
    input_fdim: !ref <n_mels>
    input_tdim: 112
    fstride: 16
    tstride: 16
    r: 2
# ------------------------------------------------------------------------------

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: !ref <out_n_neurons>
    lin_blocks: 1
modules:
    compute_stft: !ref <compute_stft>
    compute_fbank: !ref <compute_fbank>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>
opt_class: !name:torch.optim.Adam
    lr: 0.0005
"""


class ESC50Brain(sb.core.Brain):
    """A recipe's own Brain, as in SpeechBrain's ESC-50 ``train.py``."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        X_stft = self.modules.compute_stft(wavs)
        net_input = sb.processing.features.spectral_magnitude(
            X_stft, power=self.hparams.spec_mag_power
        )
        if self.hparams.use_melspectra:
            net_input = self.modules.compute_fbank(net_input)
        if hasattr(self.modules.embedding_model, "config"):
            # The recipe's Hugging Face branch (ViT, FocalNet): it resizes the
            # spectrogram to the image size the model's config gives.
            config = self.modules.embedding_model.config
            raise AssertionError(f"taken for a Hugging Face model: {config.image_size}")
        embeddings = self.modules.embedding_model(net_input)
        if isinstance(embeddings, tuple):
            embeddings, _ = embeddings
        if embeddings.ndim == 4:
            embeddings = embeddings.mean((-1, -2))
        outputs = self.modules.classifier(embeddings)
        if outputs.ndim == 2:
            outputs = outputs.unsqueeze(1)
        return outputs, lens

    def compute_objectives(self, predictions, batch, stage):
        predictions, _ = predictions
        classid, _ = batch.label
        target = F.one_hot(classid.squeeze(1), self.hparams.out_n_neurons).float()
        return -(F.log_softmax(predictions.squeeze(1), 1) * target).sum(1).mean()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.hparams.losses.append(stage_loss)


def test_swapped_encoder_trains_in_speechbrains_esc50_recipe():
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(ESC50_RECIPE_YAML)
    hparams["losses"] = []
    brain = ESC50Brain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    brain.fit(
        range(10),
        _clips_of_several_lengths(),
        train_loader_kwargs={"batch_size": 8, "shuffle": True},
    )
    losses = hparams["losses"]
    assert losses[-1] < 0.6 * losses[0], losses  # measured 1.43 -> 0.74


# Attributes that SpeechBrain recipes and ``transformers`` read to tell a
# Hugging Face model (or a wrapper) from a plain module.
DUCK_TYPED_ATTRIBUTES = ("config", "main_input_name", "device", "dtype", "module", "_orig_mod")


@pytest.mark.parametrize(
    "module",
    [
        ASTEncoder("tiny224", depth=1, input_tdim=32),
        ASTHead(192, 3),
        ASTClassifier(ASTEncoder("tiny224", depth=1, input_tdim=32), ASTHead(192, 3)),
        KaldiFbank(),
        DyMN(num_classes=3, width_mult=0.4),
    ],
    ids=lambda m: type(m).__name__,
)
def test_modules_have_none_of_the_attributes_others_duck_type_on(module):
    present = [name for name in DUCK_TYPED_ATTRIBUTES if hasattr(module, name)]
    assert present == []
