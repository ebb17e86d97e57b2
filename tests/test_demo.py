"""python -m deltaprop.demo: the README's first command, run as a user would start it."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("sklearn")

from deltaprop import demo  # noqa: E402


def test_demo_trains_both_backends_alike(capsys):
    assert demo.main(["--epochs", "2", "--dtype", "float64", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    accuracies = re.findall(r"test accuracy (\d+\.\d+)%", out)
    assert len(accuracies) == 4 and len(set(accuracies)) == 1  # each run's, then the summary's
    assert float(accuracies[0]) > 90  # two epochs of SGD on digits
    gap = float(re.search(r"differ by at most (\S+) ", out).group(1))
    assert gap < 1e-10


@pytest.mark.parametrize("argument", [["--epochs", "0"], ["--batch-size", "-3"],
                                      ["--epochs", "two"]])
def test_demo_refuses_bad_counts_before_training(capsys, argument):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argument)
    assert exit_info.value.code == 2  # argparse's usage error
    assert argument[0] in capsys.readouterr().err
