"""The session's rules for the wells suggested for labelling, for every writer: a labelled well leaves
the list (however it got its label), another model clears it, a new plate starts without one."""

from conftest import write_imagexpress
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training.suggest import Suggestion, WellSuggestions
from napari_dcmix.widgets.session import DcmixSession


def suggestions(*wells):
    items = tuple(Suggestion("Plate1", w, i, 1.0 - i / 10, 0.9, None, "a", {"a": 0.5, "b": 0.5}, f"why {w}")
                  for i, w in enumerate(wells, 1))
    return WellSuggestions(items, "m", 1, 6)


def session_with_plate(tmp_path):
    plate = open_plate(write_imagexpress(tmp_path / "plate"))
    session = DcmixSession()
    session.open_plate(plate)
    seen = []
    session.events.suggestions.connect(seen.append)
    return session, plate, seen


def test_a_labelled_well_leaves_the_list_however_it_was_labelled(tmp_path):
    session, plate, seen = session_with_plate(tmp_path)
    model = object()
    session.set_labels({("Plate1", "B02"): "a"})
    session.set_suggestions(suggestions("B02", "B03", "C02", "C03"), model)
    assert session.suggestions.wells() == [("Plate1", w) for w in ("B03", "C02", "C03")]  # B02 was labelled already
    session.assign_labels("Plate1", ["C02"], "b")
    assert [s.well for s in session.suggestions.items] == ["B03", "C03"]
    assert [s.rank for s in session.suggestions.items] == [2, 4]  # the others keep their rank
    session.assign_labels("Plate1", ["B03"], None)  # unlabelling a suggested well changes nothing
    (tmp_path / "l.csv").write_text("well,label\nC03,a\n")
    session.load_labels(read_labels(tmp_path / "l.csv", plate.sites), tmp_path / "l.csv")
    assert [s.well for s in session.suggestions.items] == ["B03"]
    assert [len(s) for s in seen] == [3, 2, 1]  # one event per change that removed wells


def test_another_model_clears_the_list_and_a_new_plate_starts_without_one(tmp_path):
    session, plate, seen = session_with_plate(tmp_path)
    model = object()
    session.set_suggestions(suggestions("B02", "B03"), model)
    session.set_model(session.model)  # the model that did not rank them (none): cleared
    assert session.suggestions is None and seen[-1] is None
    session.set_suggestions(suggestions("B02"), model)
    session.open_plate(plate)
    assert session.suggestions is None and len(seen) == 3  # reset with the plate, no event of its own


def test_apply_s_model_file_is_the_prediction_model_once_chosen(tmp_path):
    import torch

    from napari_dcmix.model import ChannelClassifier
    from napari_dcmix.training import TrainedModel
    from napari_dcmix.training.trainer import reference_stats

    session, plate, seen = session_with_plate(tmp_path)

    def model():
        torch.manual_seed(0)
        return TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), list(plate.channels), ["a", "b"],
                            reference_stats(plate), 16, {"normalization": "plate"})

    trained, from_file = model(), model()
    changed = []
    session.events.prediction_model.connect(changed.append)
    session.set_model(trained)
    session.set_file_model(from_file)  # loaded, not chosen yet: Apply still predicts with the trained one
    assert session.prediction_model is trained and changed == [trained]
    session.set_suggestions(suggestions("B02"), trained)
    session.use_file_model(True)
    assert session.prediction_model is from_file and changed == [trained, from_file]
    assert session.suggestions is None  # ranked by the trained model: they say nothing about the file's
    session.set_suggestions(suggestions("B03"), from_file)
    session.set_model(model())  # retrained meanwhile: Apply still predicts with the file
    assert session.prediction_model is from_file and session.suggestions is not None
    session.use_file_model(False)
    assert session.suggestions is None and changed[-1] is session.model
