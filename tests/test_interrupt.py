"""Ctrl-C during a long fit or predict: control comes back promptly (the C++ loops ask for
signals between batches and chunks), as KeyboardInterrupt, and the model is left usable with
the parameters of its last whole batch. Run in a subprocess so a stray signal cannot reach
the test runner."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from helpers import python

SCRIPT = textwrap.dedent("""
    import os, signal, threading, time
    import numpy as np
    import deltaprop as dp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 256))
    y = rng.integers(0, 10, 20000)
    net = dp.MLP([256, 512, 512, 10], backend="{backend}")
    work = {work}
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    try:
        work(net)
    except KeyboardInterrupt:
        waited = time.perf_counter() - start - 0.5
        finite = all(np.isfinite(p).all() for p in net.coefs_ + net.intercepts_)
        usable = net.predict(X[:5]).shape == (5,)
        print("interrupted", round(waited, 3), finite, usable)
    else:
        print("finished", time.perf_counter() - start)
""")

WORK = {
    "fit": "lambda net: net.fit(X, y, epochs=1000, batch_size=64, lr=0.01)",
    "predict": "lambda net: [net.forward(X) for _ in range(1000)]",
    # one whole-data pass takes ~1 s here: the engine asks between its row blocks
    "whole-data gradients": "lambda net: [net.loss_and_gradients(X, y) for _ in range(100)]",
}


@pytest.mark.parametrize("work", WORK)
@pytest.mark.parametrize("backend", ["cpp"])
def test_ctrl_c_returns_promptly_and_leaves_a_usable_model(work, backend):
    code = SCRIPT.format(backend=backend, work=WORK[work])
    out = subprocess.run(python("-c", code), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    status, waited, finite, usable = out.stdout.split()
    assert status == "interrupted"
    assert float(waited) < 1.0  # "promptly": a batch group, not the rest of the epoch
    assert finite == "True" and usable == "True"


ESTIMATOR_SCRIPT = textwrap.dedent("""
    import os, signal, threading, time, warnings
    import numpy as np
    from deltaprop.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    n, width = {shape}
    X = rng.standard_normal((n, 64))
    y = rng.integers(0, 10, n)
    est = MLPClassifier((width, width), random_state=0, {params})
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    waited = time.perf_counter() - start - 1.5
    finite = all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)
    print(round(waited, 3), [str(w.message) for w in caught] == ["Training interrupted by user."],
          {checks}, finite, est.predict(X[:5]).shape == (5,))
""")


@pytest.mark.parametrize("epochs", ["long epochs", "many short epochs"])
@pytest.mark.parametrize("loop", ["engine", "python"])
def test_ctrl_c_stops_an_estimator_fit_with_a_warning_and_consistent_attributes(loop, epochs):
    """scikit-learn turns Ctrl-C into a warning and keeps what was trained. Both epoch loops
    (epochs in chunks inside the engine; one engine call per epoch when a callback runs) must
    return promptly and count exactly the epochs they finished, whether an epoch lasts seconds
    or a fraction of a millisecond (the engine's check must span its chunk of epochs)."""
    callback = "None" if loop == "engine" else "lambda est: False"
    shape = (20000, 512) if epochs == "long epochs" else (2000, 256)  # seconds; ~30 ms
    script = ESTIMATOR_SCRIPT.format(
        shape=shape, params=f"max_iter=10**6, n_iter_no_change=np.inf, callback={callback}",
        checks="est.n_iter_ == len(est.loss_curve_), est.t_ == est.n_iter_ * n")
    out = subprocess.run(python("-c", script), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    waited, *checks = out.stdout.split()
    # the engine asks every 50 ms; a check restarted each epoch would wait for the chunk's end
    assert float(waited) < 0.25
    assert checks == ["True"] * 5


def test_ctrl_c_stops_an_lbfgs_fit_with_the_last_iterate():
    """L-BFGS too (scikit-learn's lets Ctrl-C through): the fit returns once the whole-data pass
    under way ends (tens of ms here), keeping the last whole iteration's parameters."""
    script = ESTIMATOR_SCRIPT.format(
        shape=(5000, 128), params='solver="lbfgs", max_iter=10**5, max_fun=10**6, tol=0.0',
        checks="est.n_iter_ > 0")
    out = subprocess.run(python("-c", script), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    waited, *checks = out.stdout.split()
    assert float(waited) < 0.5
    assert checks == ["True"] * 4


# A call that waits for a model another thread trains; a signal handler that uses the model its
# own thread trains (the engine runs handlers while it holds the model's mutex).
WAITING_SCRIPT = textwrap.dedent("""
    import os, signal, threading, time
    import numpy as np
    import deltaprop as dp

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20000, 64)), rng.integers(0, 4, 20000)
    net = dp.MLP([64, 256, 4], seed=0)
    {body}
""")

WAITING = {
    # Ctrl-C while predict waits for another thread's fit (an estimator's: one engine call),
    # which it waited out (7 s there)
    "waiting for another thread": """
    from deltaprop.sklearn import MLPClassifier
    est = MLPClassifier(max_iter=1, random_state=0).fit(X[:100], y[:100])  # (one engine call)
    est.set_params(warm_start=True, max_iter=10**6, n_iter_no_change=np.inf)
    trainer = threading.Thread(target=est.fit, args=(X, y))
    trainer.start()
    time.sleep(0.3)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    try:
        est.predict(X)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", trainer.is_alive(), time.perf_counter() - start - 0.5 < 0.5,
              flush=True)
    os._exit(0)  # (the trainer would run on)
    """,
    # a handler using the model its own thread trains: the process hung for good
    "a handler in the training thread": """
    def report(signum, frame):
        net.evaluate(X[:100], y[:100])
    signal.signal(signal.SIGALRM, report)
    signal.setitimer(signal.ITIMER_REAL, 0.3, 0.05)  # (again and again: some inside the engine)
    try:
        net.fit(X, y, epochs=200, batch_size=32)
    except RuntimeError as error:
        print("RuntimeError", "busy in this very thread" in str(error), net.predict(X[:5]).shape)
    else:
        print("finished before the alarm")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # (an alarm at exit would end the process)
    """,
}


@pytest.mark.parametrize("case", WAITING)
def test_a_call_never_waits_for_ever_on_a_busy_model(case):
    script = WAITING_SCRIPT.format(body=textwrap.dedent(WAITING[case]))
    out = subprocess.run(python("-c", script), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    expected = {"waiting for another thread": "KeyboardInterrupt True True",
                "a handler in the training thread": "RuntimeError True (5,)"}[case]
    assert out.stdout.strip() == expected
