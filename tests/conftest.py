import pytest
import torch

import pixelnet

# Tiny configs: 1 channel / 2 levels and 3 channels / 256 levels, for every architecture.
TINY = dict(layers=2, h=3, out_h=12)
MS_TINY = dict(small_layers=1, small_h=3, up_channels=4)
DATA = [pytest.param(dict(channels=1, levels=2), id="1ch-2lv"),
        pytest.param(dict(channels=3, levels=256), id="3ch-256lv")]


def tiny_model(arch, channels=1, levels=2, height=6, width=6, **kw):
    torch.manual_seed(0)
    hp = {**TINY, **(MS_TINY if arch == "multiscale" else {}), **kw}
    return pixelnet.build_model(arch, channels=channels, levels=levels, height=height,
                                width=width, **hp)


@pytest.fixture(params=pixelnet.ARCHITECTURES)
def arch(request):
    return request.param


@pytest.fixture(params=DATA)
def data(request):
    return request.param
