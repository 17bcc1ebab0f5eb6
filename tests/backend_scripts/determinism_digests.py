"""Keras on the backend ``sys.argv[1]``: the seeded layers' digests of test_keras_determinism, twice
with fresh layers, as JSON (read by its test_torch_backend_is_reproducible_with_its_own_numbers)."""

import json

import test_keras_determinism

print(json.dumps([test_keras_determinism.digests() for _ in range(2)]))
