import cv2
import numpy as np
import pytest
import torch

from ml.errors import CheckpointError
from ml.faces import find_faces
from ml.explain import gradcam, heatmap_of, recording_cams
from ml.model import (
    ARCHITECTURES,
    Architecture,
    ModelSpec,
    Weights,
    build_model,
    fold_batchnorm,
    load_checkpoint,
    preprocess,
    save_checkpoint,
)
from ml.training_data import CropDataset, Item, collate


@pytest.fixture()
def crops(astronaut):
    rng = np.random.default_rng(1)
    face = cv2.resize(astronaut[60:170, 170:280], (224, 224))
    noise = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    return [face, noise, face[:, ::-1].copy()]


def predict(model, crops, spec):
    with torch.inference_mode():
        return torch.softmax(model(preprocess(crops, spec)), dim=1).numpy()


def test_a_checkpoint_round_trip_gives_bit_identical_predictions(tmp_path, crops):
    torch.manual_seed(0)
    model = build_model(arch="resnet18").eval()
    spec = ModelSpec(threshold=0.42, face_margin=0.9, face_shift=0.08, version="t1", training={"epochs": 3})
    path = save_checkpoint(model, tmp_path / "m.pt", spec)
    loaded, loaded_spec = load_checkpoint(path, device="cpu")
    assert loaded_spec == spec
    assert np.array_equal(predict(model, crops, spec), predict(loaded, crops, loaded_spec))


def test_fp16_storage_halves_the_file_and_keeps_predictions(tmp_path, crops):
    torch.manual_seed(0)
    model = build_model(arch="mobilenet_v2").eval()
    full = save_checkpoint(model, tmp_path / "full.pt")
    half = save_checkpoint(model, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, spec = load_checkpoint(half, device="cpu")
    assert next(loaded.parameters()).dtype == torch.float32
    assert np.allclose(predict(model, crops, spec), predict(loaded, crops, spec), atol=2e-2)


def test_inference_preprocessing_is_exactly_the_training_validation_transform(tmp_path, astronaut, detector):
    box = find_faces(astronaut)[0]
    crop = detector.crop(astronaut, box)
    path = tmp_path / "crop.png"  # lossless, as a prepared training crop
    cv2.imwrite(str(path), crop)
    dataset = CropDataset([Item(path, 1)], size=detector.spec.input_size, train=False, seed=0)
    batch, labels = collate([dataset[0]], detector.spec)
    assert torch.equal(batch, preprocess([crop], detector.spec))
    assert labels.tolist() == [1]


def test_preprocessing_normalises_with_the_checkpoints_mean_and_std():
    spec = ModelSpec(input_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    crop = np.zeros((4, 4, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    batch = preprocess([crop], spec)
    assert batch.shape == (1, 3, 4, 4)
    assert torch.allclose(batch[0, :, 0, 0], torch.tensor([-1.0, -2.0, 1.0]))  # R, G, B


def test_a_missing_or_foreign_checkpoint_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no model checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a deepfake-detector/1 checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage)


def test_an_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown arch"):
        build_model(arch="vgg16")


class TinyNet(torch.nn.Module):
    """A backbone nobody ships: two convolutions and a linear head."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3))
        self.head = torch.nn.Linear(8, 1000)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def tiny_head(model, classes):
    model.head = torch.nn.Linear(model.head.in_features, classes)


def test_a_new_architecture_is_one_registry_entry(monkeypatch, tmp_path, crops):
    entry = Architecture(
        name="tiny",
        builder=TinyNet,
        model_type=TinyNet,
        imagenet_state=lambda: TinyNet().state_dict(),
        replace_head=tiny_head,
        gradcam_layer=lambda model: model.features[-1],
        head=lambda model: model.head,
    )
    monkeypatch.setitem(ARCHITECTURES, "tiny", entry)
    model = build_model(arch="tiny", weights=Weights("imagenet")).eval()
    loaded, spec = load_checkpoint(save_checkpoint(model, tmp_path / "tiny.pt"), device="cpu")
    assert spec.arch == "tiny" and isinstance(loaded, TinyNet)
    assert np.array_equal(predict(model, crops, spec), predict(loaded, crops, spec))
    heatmap = gradcam(loaded, spec, crops[0])
    assert heatmap.shape == (224, 224) and 0.0 <= heatmap.min() <= heatmap.max() <= 1.0
    with recording_cams(loaded, spec) as cams:
        predict(loaded, crops[:1], spec)
    assert np.abs(heatmap_of(cams[0], (224, 224)) - heatmap).max() < 1e-3


def test_a_backbone_starts_from_a_local_state_dict_file_with_a_fresh_two_class_head(tmp_path, crops):
    torch.manual_seed(0)
    imagenet_like = build_model(arch="resnet18")
    imagenet_like.fc = torch.nn.Linear(512, 1000)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet_like.state_dict(), path)
    model = build_model(arch="resnet18", weights=Weights.parse(str(path)))
    assert torch.equal(model.layer4[0].conv1.weight, imagenet_like.layer4[0].conv1.weight)
    assert model.fc.out_features == 2


@pytest.mark.parametrize(
    "value,expected",
    [(True, Weights("imagenet")), ("imagenet", Weights("imagenet")), (False, Weights()), ("none", Weights())],
)
def test_the_training_configs_pretrained_value_names_the_starting_weights(value, expected):
    assert Weights.parse(value) == expected


def test_folding_batchnorm_into_the_convolutions_keeps_the_predictions(crops):
    model = build_model(arch="mobilenet_v2")
    with torch.no_grad():  # trained-looking statistics, not the identity of a fresh model
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    model.eval()
    spec = ModelSpec(arch="mobilenet_v2")
    before = predict(model, crops, spec)
    fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert np.abs(predict(model, crops, spec) - before).max() < 1e-5
