import pytest
from torch import nn

from stream_am.fastgrad import is_elementwise
from stream_am.network import decompose
from stream_am.nn import Sign


def test_mlp_with_nested_sequential_and_batchnorm():
    seq = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), Sign()), nn.Linear(8, 3)
    )
    net = decompose(seq)
    assert net.n_codes == 2
    assert net.blocks[0].norm is seq[1]
    assert isinstance(net.acts[1][0], Sign)
    assert net.out is seq[4]


def test_conv_net_with_pooling_flatten_and_leading_modules():
    seq = nn.Sequential(
        nn.Identity(), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.1), nn.Linear(4 * 3 * 3, 10),
    )
    net = decompose(seq)
    assert net.n_codes == 1 and len(net.pre) == 1
    assert not is_elementwise(net.acts[0]) and is_elementwise(net.acts[0][:1])  # pooling, flatten: not


def test_single_linear_is_a_readout_only_network():
    net = decompose(nn.Sequential(nn.Linear(3, 2)))
    assert net.n_codes == 0


@pytest.mark.parametrize(
    ("seq", "match"),
    [
        (nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1)), r"module\[1\].*Softmax.*nothing may follow"),
        (nn.Sequential(nn.Linear(2, 3), nn.LSTM(3, 3), nn.Linear(3, 2)), r"module\[1\].*LSTM.*not supported"),
        (nn.Sequential(nn.Conv2d(1, 2, 3)), r"module\[0\].*output layer must be an nn.Linear"),
        (nn.Sequential(nn.Linear(2, 3), nn.BatchNorm2d(3), nn.Linear(3, 2)), r"module\[1\].*does not match"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2)), r"module\[2\].*directly"),
        (nn.Sequential(nn.ReLU()), "at least one nn.Linear"),
        (nn.Sequential(nn.Linear(2, 3), nn.PReLU(), nn.Linear(3, 2)), r"module\[1\]"),
    ],
)
def test_unsupported_layouts_name_the_module(seq, match):
    with pytest.raises(ValueError, match=match):
        decompose(seq)


def test_non_sequential_is_refused():
    with pytest.raises(ValueError, match="torch.nn.Sequential"):
        decompose(nn.Linear(2, 2))
