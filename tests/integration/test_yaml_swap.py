"""The YAML swap of the README: an existing SpeechBrain recipe turned into a ToMe-AST one.

The recipe here is written the way SpeechBrain's own classification recipes
are (UrbanSound8k's ``train_ecapa_tdnn.yaml`` / ``train.py``): its own Brain
computes SpeechBrain ``Fbank`` features of the batch's own length,
normalises them with ``InputNormalization``, calls
``embedding_model(feats, lens)`` and ECAPA's cosine ``Classifier`` with the
additive-angular-margin loss. Only the ``embedding_model`` block of its YAML
is swapped for ``fastast_plugin.ast.ASTEncoder``; the run must learn.

Authors
 * fastast developers 2026
"""

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from fastast_plugin.synthetic import CLASSES, synthesize

RECIPE_YAML = """
n_mels: 80
n_classes: 4
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

# ---- the swapped block (was speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN) ----
embedding_model: !new:fastast_plugin.ast.ASTEncoder
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


def test_swapped_encoder_trains_on_speechbrain_features_of_the_batch_length(tmp_path):
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(RECIPE_YAML)
    hparams["losses"] = []
    # Clips of 0.5-1.1 s: every batch is padded to its own longest clip.
    data = {
        f"{label}{i}": {
            "sig": torch.from_numpy(synthesize(label, 0.5 + 0.1 * (i % 7), seed=i)),
            "label": torch.tensor([CLASSES.index(label)]),
        }
        for i in range(8)
        for label in CLASSES
    }
    train_set = sb.dataio.dataset.DynamicItemDataset(data, output_keys=["id", "sig", "label"])
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
