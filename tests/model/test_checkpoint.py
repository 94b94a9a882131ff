"""Model files: round trip, never run code from a file, one-line CheckpointError for anything else."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import napari_dcmix
from napari_dcmix.errors import CheckpointError
from napari_dcmix.model import ChannelClassifier, load_checkpoint, match_channels, save_checkpoint
from napari_dcmix.model.checkpoint import FORMAT_VERSION


def write_marker(path: str) -> None:
    """The 'payload': if this ever runs during a load, the marker file appears."""
    Path(path).write_text("pwned")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (write_marker, (self.marker,))


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def _trained_like(kind: str) -> ChannelClassifier:
    torch.manual_seed(1)
    model = ChannelClassifier(kind, n_channels=3, n_classes=4, n_mix_outputs=2, temperature=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.train()
    model(torch.randn(4, 3, 32, 32))  # move BN running stats / SE running mean away from defaults
    return model.eval()


@pytest.mark.parametrize("kind", ["dcmix", "all-channels", "se-attention"])
def test_round_trip_same_outputs_and_metadata(tmp_path, kind):
    model = _trained_like(kind)
    meta = {"channels": ["DNA", "ER", "RNA"], "mean": np.array([0.1, 0.2, 0.3]), "std": np.float32(2.0),
            "class_names": ("a", "b", "c", "d"), "tile": np.int64(64), "history": [{"loss": 0.5}],
            "alpha": model.importance()}
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, meta)
    assert not [p for p in tmp_path.iterdir() if p.name != "model.pt"]  # no temp files left behind

    loaded, meta2 = load_checkpoint(path)
    assert not loaded.training
    if kind != "all-channels":
        np.testing.assert_allclose(loaded.importance(), model.importance())
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert meta2["model"] == model.config()
    assert meta2["format_version"] == FORMAT_VERSION
    assert meta2["package_version"] == napari_dcmix.__version__
    assert meta2["channels"] == ["DNA", "ER", "RNA"]
    assert meta2["mean"] == pytest.approx([0.1, 0.2, 0.3])
    assert meta2["std"] == 2.0 and meta2["tile"] == 64 and meta2["class_names"] == ["a", "b", "c", "d"]
    assert meta2["history"] == [{"loss": 0.5}]
    if kind == "all-channels":
        assert meta2["alpha"] is None
    else:
        np.testing.assert_allclose(meta2["alpha"], meta["alpha"])

    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "napari-dcmix" and raw["format_version"] == 1
    assert json.loads(raw["metadata_json"])["model"]["kind"] == kind


@pytest.mark.parametrize("payload_cls", [_Payload, _SystemPayload])
@pytest.mark.parametrize("container", ["pickle", "torch.save"])
def test_code_payload_refused_and_never_runs(tmp_path, payload_cls, container):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    if container == "pickle":
        evil.write_bytes(pickle.dumps(payload_cls(marker), protocol=2))
    else:
        torch.save({"format": "napari-dcmix", "format_version": 1, "state_dict": payload_cls(marker),
                    "metadata_json": "{}"}, evil)
    with pytest.raises(CheckpointError, match="not a napari-dcmix model file") as info:
        load_checkpoint(evil)
    assert "\n" not in str(info.value)
    assert not marker.exists()

    # control: the same kind of payload does run under a plain unpickler, so the test above means something
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(payload_cls(control), protocol=2))
    assert control.exists()


def test_random_bytes_missing_file_and_folder(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path, match in [(junk, "not a napari-dcmix model file"), (empty, "not a napari-dcmix model file"),
                        (tmp_path / "nope.pt", "does not exist"), (tmp_path, "not a file")]:
        with pytest.raises(CheckpointError, match=match) as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value)


def test_truncated_model_file(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, ChannelClassifier("dcmix", 3, 2), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a napari-dcmix model file") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def _save_raw(path, **overrides):
    model = ChannelClassifier("dcmix", 3, 2)
    payload = {"format": "napari-dcmix", "format_version": 1, "state_dict": model.state_dict(),
               "metadata_json": json.dumps({"model": model.config()})}
    payload.update(overrides)
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "overrides, match",
    [({"format": "something-else"}, "not a napari-dcmix model file"),
     ({"format_version": 99}, "newer napari-dcmix"),
     ({"state_dict": None}, "damaged"),
     ({"metadata_json": "{not json"}, "damaged"),
     ({"metadata_json": json.dumps({"channels": []})}, "no model description"),
     ({"metadata_json": json.dumps({"model": {"kind": "gan", "n_channels": 3, "n_classes": 2}})},
      "cannot build"),
     ({"state_dict": {"head.weight": torch.zeros(2, 2)}}, "weights do not fit")],
)
def test_bad_contents_give_checkpoint_error(tmp_path, overrides, match):
    path = _save_raw(tmp_path / "m.pt", **overrides)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_plain_tensor_file_is_not_a_model(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="format marker"):
        load_checkpoint(path)


def test_match_channels_reorders_by_name():
    assert match_channels(["DNA", "ER", "RNA"], ["rna", "Dna", "er"]) == [1, 2, 0]
    assert match_channels(["a"], ["A"]) == [0]


def test_match_channels_names_missing_and_extra():
    with pytest.raises(CheckpointError) as info:
        match_channels(["DNA", "ER", "RNA"], ["DNA", "RNA", "Actin"])
    msg = str(info.value)
    assert "model expects channels DNA, ER, RNA" in msg
    assert "plate is missing: ER" in msg and "plate has extra: Actin" in msg
    with pytest.raises(CheckpointError, match="missing: ER") as info:
        match_channels(["DNA", "ER"], ["DNA"])
    assert "extra" not in str(info.value)
    with pytest.raises(CheckpointError, match="distinct"):
        match_channels(["DNA", "dna"], ["DNA", "ER"])


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_never_saved(tmp_path, value):
    from napari_dcmix.errors import DcmixError

    model = ChannelClassifier("dcmix", 3, 2)
    with torch.no_grad():
        model.mixing.logits[0, 1] = value
    with pytest.raises(DcmixError, match="non-finite values"):
        save_checkpoint(tmp_path / "m.pt", model, {})
    assert not list(tmp_path.iterdir())  # nothing half-written either


def test_a_tampered_file_with_nan_tensors_is_refused(tmp_path):
    model = ChannelClassifier("dcmix", 3, 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["head.weight"][0, 0] = float("nan")
    path = _save_raw(tmp_path / "m.pt", state_dict=state)
    with pytest.raises(CheckpointError, match="non-finite values"):
        load_checkpoint(path)
