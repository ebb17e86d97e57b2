"""What fit(record_health=True) costs: one epoch of the issue's 784-512-512-10 network
(2048 rows, batch 128) with and without recording, side by side in one group per dtype (the
target: under 5%). Each round trains the same epoch from a fresh network; the recorded run
must end with bitwise the same weights as the plain one."""

from __future__ import annotations

import numpy as np
import pytest
from workloads import DTYPES, LARGE, epoch_data, new_net

ROUNDS = 9


@pytest.fixture(scope="module", params=DTYPES)
def case(request):
    dtype = request.param
    X, y = epoch_data(LARGE, dtype)
    plain = new_net(LARGE, dtype, "cpp")
    plain.fit(X, y, epochs=1, batch_size=LARGE.batch_size, lr=LARGE.lr, momentum=LARGE.momentum)
    return dtype, X, y, plain


@pytest.mark.parametrize("record", [False, True], ids=["plain", "record_health"])
def test_health_overhead(benchmark, case, record):
    dtype, X, y, plain = case
    benchmark.group = f"health overhead {LARGE.label} {dtype}"

    def run(net):
        net.fit(X, y, epochs=1, batch_size=LARGE.batch_size, lr=LARGE.lr,
                momentum=LARGE.momentum, record_health=record)
        return net

    net = benchmark.pedantic(run, setup=lambda: ((new_net(LARGE, dtype, "cpp"),), {}),
                             rounds=ROUNDS, warmup_rounds=1)
    for got, want in zip(net.coefs_, plain.coefs_):
        np.testing.assert_array_equal(got, want)
    if record:
        assert net.health_["grad_norm"].shape == (1, 3)
