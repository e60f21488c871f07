"""nets.train.deepen: a U-Net given more levels starts out as the shallower network it grew from."""

from __future__ import annotations

import pytest
import torch

from cmr_atlas.nets.train import deepen, levels_of
from cmr_atlas.nets.unet import UNet


def _trained_looking(levels: int, in_channels: int = 1) -> UNet:
    """A U-Net whose batch norms hold statistics other than the defaults (as a trained one's do)."""
    torch.manual_seed(levels)
    net = UNet(in_channels, 4, 8, levels)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        net.train()
        for _ in range(3):
            net(torch.randn(8, in_channels, 32, 32))
    return net.eval()


@pytest.mark.parametrize("old, new", [(3, 4), (3, 5)])
def test_deepened_network_computes_what_the_shallower_one_did(old: int, new: int):
    shallow = _trained_looking(old)
    deep = UNet(1, 4, 8, new)
    state = deepen(shallow.state_dict(), deep)
    deep.load_state_dict(state)
    deep.eval()
    assert levels_of(state) == new
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), shallow(x), atol=1e-5, rtol=1e-5)
        # the old decoder moved down by the levels added; the new deepest path reaches the output
        torch.testing.assert_close(deep.dec[new - old].state_dict()["0.weight"], shallow.dec[0].state_dict()["0.weight"])
        joint = deep.dec[new - old - 1][0].weight  # takes the old bottleneck (skip) and the new levels (up)
        joint[:, : joint.shape[1] // 2] += 1.0
        assert (deep(x) - shallow(x)).abs().max() > 1e-4  # ten times what the identity allows


def test_deepened_network_in_training_mode_stays_near_the_shallower_one():
    """The new levels' batch norms carry the skip's own statistics, so batch statistics change
    little at the first training steps."""
    shallow = _trained_looking(3)
    deep = UNet(1, 4, 8, 4)
    deep.load_state_dict(deepen(shallow.state_dict(), deep))
    naive = {k: v.clone() for k, v in deep.state_dict().items()}
    for k in [k for k in naive if k.startswith("dec.0.") and ("1." in k or "4." in k)]:
        naive[k] = torch.ones_like(naive[k]) if k.endswith(("weight", "running_var")) else torch.zeros_like(naive[k])
    plain = UNet(1, 4, 8, 4)
    plain.load_state_dict(naive)  # identity convolutions, default batch norms
    x = torch.randn(16, 1, 32, 32)
    with torch.no_grad():
        ref = shallow.train()(x)
        near = (deep.train()(x) - ref).abs().mean()
        far = (plain.train()(x) - ref).abs().mean()
    assert near < 0.5 * far


def test_fewer_levels_or_another_width_is_refused():
    deep = _trained_looking(4)
    with pytest.raises(ValueError, match="cannot deepen a 4-level"):
        deepen(deep.state_dict(), UNet(1, 4, 8, 3))
    with pytest.raises(ValueError, match="does not fit"):
        deepen(_trained_looking(3).state_dict(), UNet(1, 4, 16, 4))
