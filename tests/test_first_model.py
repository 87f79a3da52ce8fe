"""A process's first model: building the networks (estimators, the backprop baseline) and growing its outputs
imports nothing more. Moving a module built on the meta device (``nn.utils.skip_init``) imported sympy through
torch.fx, a quarter of a second at the first model of every process; the networks are now built without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_learning_the_first_samples_imports_no_sympy():
    code = textwrap.dedent("""
        import sys
        import torch
        from river import datasets
        from stream_am import AMClassifier, AMRegressor
        from stream_am.baselines import BackpropClassifier
        assert "sympy" not in sys.modules, "imported by the imports themselves: the test would prove nothing"
        rng = torch.random.get_rng_state()
        for model in (AMClassifier(batch_size=8, seed=0), BackpropClassifier(batch_size=8, seed=0)):
            for x, y in datasets.ImageSegments().take(120):  # 7 classes arriving: the outputs grow
                model.learn_one(x, y)
            assert model.predict_one(x) is not None
        regressor = AMRegressor(batch_size=8, seed=0)
        for x, y in datasets.TrumpApproval().take(40):
            regressor.learn_one(x, y)
        assert torch.equal(rng, torch.random.get_rng_state())  # and no global-RNG draw
        print("sympy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
