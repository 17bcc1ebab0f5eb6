"""Test-session set-up shared by every test module."""

# TensorFlow and Triton (loaded lazily by torch._dynamo / torch.compile) each bundle LLVM and
# register the same LLVM command-line options: whichever is loaded second aborts the process
# ("Option ... registered more than once!"). A pytest worker collects Keras and torch tests
# together, so Triton is loaded first, before any test module can import TensorFlow.
try:
    import triton  # noqa: F401
except ImportError:  # no Triton (CPU-only torch, or no torch): nothing to conflict with
    pass
