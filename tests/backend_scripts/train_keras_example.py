"""examples/train_keras.py in its fast mode, on the Keras backend ``sys.argv[1]``, as a user runs it
(test_examples.py::test_train_keras_on_the_torch_backend)."""

import runpy
import sys
from pathlib import Path

script = Path(__file__).resolve().parents[2] / "examples" / "train_keras.py"
sys.argv = [str(script), "--fast-dev-run", "--augment", "gridmask,cutswap", "--cutmix", "1.0", "--batch-size", "16"]
runpy.run_path(str(script), run_name="__main__")
