"""The CLI report: each problem printed once however often it is flushed, capped with a count, and the
``problems``/``skipped`` lists of the JSON payload built from every source of the run."""

import io
from argparse import Namespace

from napari_dcmix import report
from napari_dcmix.plate.problems import make


def test_each_problem_once_capped_with_a_count():
    args, plate_problems = Namespace(), [make("missing-channel", f"B{i:02d} s1 lacks w2", site=f"B{i:02d} s1",
                                              action="skipped") for i in range(1, 24)]
    stream = io.StringIO()
    rep = report.report_of(args)
    rep.add(plate_problems)
    rep.flush(stream)
    rep.flush(stream)  # nothing new: nothing printed again
    plate_problems.append("a late problem from a read")  # bare strings still work
    rep.close(stream)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["warning: B01 s1 lacks w2: skipped", "warning: B02 s1 lacks w2: skipped"]
    assert len(lines) == 21 and lines[-1] == "warning: … and 4 more problems (all of them are listed by --json)"


def test_payload_joins_sources_and_lists_skipped_sites():
    args = Namespace()
    shared = make("labels", "class 'x' is labeled on one well only (B02)")
    report.track(args, [make("unreadable", "bad", file="a.tif", site="B02 s1", action="skipped"), shared], flush=False)
    report.track(args, [shared, make("stack", "z", site="B03 s1", action="re-planed")], flush=False)
    payload = report.finish(args, {"x": 1})
    assert payload["x"] == 1 and payload["skipped"] == ["B02 s1"]
    assert [p["kind"] for p in payload["problems"]] == ["unreadable", "labels", "stack"]
    assert payload["problems"][0] == {"kind": "unreadable", "message": "bad: skipped", "file": "a.tif",
                                      "site": "B02 s1", "well": "B02", "action": "skipped", "fix": ""}
