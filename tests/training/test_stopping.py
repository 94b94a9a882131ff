"""The per-step agreement (issue 22): a stop request (SIGTERM), the sites each rank lost and a storage that
stopped answering are decided by every rank together at the same optimiser step. The torchrun path is
exercised end to end in tests/test_faults_long_runs.py; here one rank's view of two, with the other
rank's contributions given, checks that every rank takes the same decision."""

from __future__ import annotations

import pytest
import torch

from napari_dcmix.errors import PlateError, SourceUnavailable
from napari_dcmix.plate import SiteKey
from napari_dcmix.training.distributed import DistContext
from napari_dcmix.training.site_losses import SiteLosses, SitesLost
from napari_dcmix.training.stopping import (StopRequested, agree_step, clear_stop, request_stop,
                                            training_started)

CPU = torch.device("cpu")


class OtherRank(DistContext):
    """Rank 0 of two; the other rank's all-reduce values and gathered object are given."""

    def __init__(self, values: list[float], shared=None):
        super().__init__(rank=0, world_size=2)
        self.values, self.shared, self.gathered = values, shared, []

    def all_reduce_sum(self, values, device):
        return [a + b for a, b in zip(values, self.values)]

    def gather(self, obj):
        self.gathered.append(obj)
        return [obj, self.shared]


@pytest.fixture(autouse=True)
def no_stop_left():
    clear_stop()
    yield
    clear_stop()


def losses_of(n_wells=20):
    return SiteLosses({SiteKey("", f"B{c:02d}", 1): "a" if c % 2 else "b" for c in range(2, 2 + n_wells)})


def test_alone_the_loss_goes_through_and_a_stop_request_stops_at_the_step():
    assert not training_started()
    assert agree_step(DistContext(), 0.7, CPU, losses_of(), step=4) == 0.7 and training_started()
    request_stop()
    with pytest.raises(StopRequested):
        agree_step(DistContext(), 0.7, CPU, losses_of(), step=5)
    assert issubclass(StopRequested, KeyboardInterrupt)  # the CLI's Ctrl-C path handles it


def test_a_stop_asked_on_the_other_rank_stops_this_one_at_the_same_step():
    with pytest.raises(StopRequested):
        agree_step(OtherRank([0.6, 1.0, 0.0, 0.0]), 0.7, CPU, losses_of(), step=5)
    assert agree_step(OtherRank([0.6, 0.0, 0.0, 0.0]), 0.7, CPU, losses_of(), step=5) == pytest.approx(1.3)


def test_sites_the_other_rank_lost_count_here_too():
    losses = losses_of()  # 20 sites: 1 lost is 5 %, 2 are more
    mine = SiteKey("", "B02", 1)
    losses.read(mine)
    losses.failed(mine, PlateError("deleted"))
    dist = OtherRank([0.6, 0.0, 1.0, 0.0], shared=([(SiteKey("", "B03", 1), "truncated")], None, None))
    with pytest.raises(SitesLost, match=r"training stopped at step 8: 2 of its 20 labelled sites .*B02 s1, B03 s1"):
        agree_step(dist, 0.7, CPU, losses, step=7)
    assert dist.gathered == [([(mine, "deleted")], None, None)]  # what this rank lost, sent once


def test_a_storage_gone_on_the_other_rank_stops_this_one():
    losses = losses_of()
    shared = ([], "HTTP 503 after 5 tries", SiteKey("", "B09", 1))
    with pytest.raises(SourceUnavailable, match=r"stopped at step 3: .* answering at B09 s1 \(HTTP 503 after 5 tries\)"):
        agree_step(OtherRank([0.6, 0.0, 0.0, 1.0], shared), 0.7, CPU, losses, step=2)
    assert losses.down  # this rank stops asking for sites too
