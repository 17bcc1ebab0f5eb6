"""Parameters drawn in inference mode never reach the user nor an autograd graph.

An eager call draws its random parameters in inference mode (``MaskMixTransform._draw_params``:
less host time per small operation) unless an autograd graph may go through the sample. The
parameters are then inference tensors, which may not be written in place outside inference mode
nor saved by autograd. These tests hold the two promises that make that safe, for every torch
configuration of the registry: what a call returns is an ordinary tensor, and a graph through any
image of a sample (not only the first) or through soft labels still gets its gradients.
"""

from __future__ import annotations

import pytest
import torch
from helpers import gen, make_images
from registry_cases import NUM_CLASSES, variant_cases
from torchvision import tv_tensors

CASES = variant_cases("torch")


def _outputs(result: object) -> list[torch.Tensor]:
    """Every tensor of a call's result (nested tuples and dicts flattened)."""
    if isinstance(result, torch.Tensor):
        return [result]
    items = result.values() if isinstance(result, dict) else result
    return [t for item in items for t in _outputs(item)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("call", ["plain", "sample"])
def test_every_output_is_an_ordinary_tensor(name: str, call: str) -> None:
    # "plain": the short route of a plain batch (and labels); "sample": torchvision's route, with
    # segmentation masks where the strategy takes them and the augmentation labels.
    case = CASES[name]
    images = make_images((4, 3, 8, 8))
    options = {"return_labels": True} if call == "sample" and "return_labels" in case.spec.param_names else {}
    transform = case.build(generator=gen(1), augmentation_ratio=0.5, **options)
    masks = tv_tensors.Mask(torch.arange(4 * 8 * 8).reshape(4, 8, 8).remainder(5).to(torch.uint8))
    if case.mixes:
        labels = torch.arange(4).remainder(NUM_CLASSES)
        result = transform(images, labels) if call == "plain" else transform({"image": images, "label": labels})
    elif call == "plain" or transform.dense_targets == "refuse":
        result = transform(images)
    else:
        result = transform(images, masks)
    outputs = _outputs(result)
    assert len(outputs) >= 1 + bool(options)
    for out in outputs:
        assert not out.is_inference(), f"{name} returned an inference tensor of shape {tuple(out.shape)}"
        out.mul_(1)  # written in place by the caller, as any tensor it owns


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_are_inference_tensors_exactly_where_the_strategy_draws_them_so(name: str) -> None:
    # A strategy may turn inference-mode draws off (`draws_in_inference_mode`, Cutout: its usual
    # draw is cheaper than entering the mode); the others draw every tensor parameter in it,
    # unless the images record a gradient. Would fail if the flag were ignored either way, or if a
    # graph through the images still got inference parameters.
    transform = CASES[name].build(generator=gen(2))
    images = make_images((4, 3, 8, 8))
    expected = type(transform).draws_in_inference_mode
    for graph, wanted in ((False, expected), (True, False)):
        source = images.clone().requires_grad_(graph)
        params = transform._draw_params(source)
        # Drawn tensors are inference tensors; cached constants (built once, outside the mode) never are.
        drawn = [key for key, value in params.items() if isinstance(value, torch.Tensor) and value.is_inference()]
        assert bool(drawn) == wanted, (graph, drawn)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if not c.mixes])
def test_a_graph_through_a_later_image_of_the_sample_gets_its_gradient(name: str) -> None:
    # The parameters are drawn from the first image; the second records a gradient.
    case = CASES[name]
    first = tv_tensors.Image(make_images((4, 3, 8, 8), seed=2))
    second = tv_tensors.Image(make_images((4, 3, 8, 8), seed=3)).requires_grad_()
    out_first, out_second = case.build(generator=gen(5), augmentation_ratio=0.5)(first, second)
    out_second.sum().backward()
    assert second.grad is not None and torch.isfinite(second.grad).all()
    assert not out_first.requires_grad and out_second.requires_grad


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.mixes])
def test_soft_labels_that_record_a_gradient_get_it(name: str) -> None:
    # A teacher's soft labels. The reference: the same draws made as ordinary tensors, because the
    # images record a gradient too. Every mixed row's weights sum to 1, so each class column of
    # the gradient of the label sum adds up to the batch size (times 1 - label_smoothing, which
    # scales the given rows).
    case = CASES[name]

    def gradient(images: torch.Tensor) -> torch.Tensor:
        soft = torch.softmax(torch.randn(6, NUM_CLASSES, generator=gen(4)), dim=1).requires_grad_()
        _, mixed = case.build(generator=gen(6), augmentation_ratio=0.5)(images, soft)
        mixed.sum().backward()
        assert soft.grad is not None
        return soft.grad

    images = make_images((6, 3, 8, 8))
    got = gradient(images)
    torch.testing.assert_close(got, gradient(images.clone().requires_grad_()), rtol=0, atol=0)
    scale = 1.0 - case.config.get("label_smoothing", 0.0)
    torch.testing.assert_close(got.sum(dim=0), torch.full((NUM_CLASSES,), 6.0 * scale))


@pytest.mark.parametrize("name", list(CASES))
def test_forward_mode_derivatives_follow_the_pixels(name: str) -> None:
    """Forward-mode AD (dual tensors, torch.func.jvp / jacfwd) against the numerical Jacobian: the
    masking and pasting strategies moved the pixels as integer bit patterns (and CutMix wrote into
    an out= buffer) whenever the images did not require_grad, which dual tensors do not: the
    tangent came back None, or all zeros under jvp."""
    case = CASES[name]
    labels = torch.arange(4) % NUM_CLASSES

    def call(images: torch.Tensor) -> torch.Tensor:
        transform = case.build(generator=gen(3), augmentation_ratio=0.5)
        out = transform(images, labels) if case.mixes else transform(images)
        return out[0] if isinstance(out, tuple) else out

    x = (make_images((4, 2, 6, 6)).double() * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(call, (x,), eps=1e-6, atol=1e-5, check_forward_ad=True, check_backward_ad=False,
                                    check_undefined_grad=False, check_batched_grad=False)
    # torch.func.jvp against the same product computed by reverse mode (the double-backward trick).
    direction = make_images((4, 2, 6, 6), seed=5).double()
    tangent = torch.func.jvp(call, (x.detach(),), (direction,))[1]
    expected = torch.autograd.functional.jvp(call, x.detach(), direction)[1]
    assert expected.abs().sum() > 0
    torch.testing.assert_close(tangent, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["erasing", "cutmix"])
def test_vmap_is_refused_saying_what_to_do(name: str) -> None:
    """Under torch.func.vmap only some configurations ran, by chance (memory-format queries and bit
    views are not batched): refused, with the way to per-sample gradients."""
    case = next(case for key, case in CASES.items() if key.startswith(name))
    transform = case.build()
    images, labels = make_images((4, 3, 8, 8)), torch.arange(4) % NUM_CLASSES

    def call(image: torch.Tensor) -> torch.Tensor:
        out = transform(image[None], labels[:1]) if case.mixes else transform(image)
        return out[0] if isinstance(out, tuple) else out

    with pytest.raises(TypeError, match=rf"{type(transform).__name__}: cannot run under torch.func.vmap; call it on "
                                        "the batch outside vmap"):
        torch.func.vmap(call, randomness="different")(images)


@pytest.mark.compile
def test_soft_labels_that_record_a_gradient_compile() -> None:
    """A teacher's soft labels through torch.compile(fullgraph=True): the check that copies
    inference-tensor parameters asked is_inference(), which Dynamo cannot trace (Unsupported);
    nothing is an inference tensor there. The label gradients equal the eager ones."""
    from maskmix.torch import RandomCutMix

    images = make_images((4, 3, 8, 8))
    soft = torch.softmax(torch.randn(4, NUM_CLASSES, generator=gen(2)), 1)
    grads = []
    for compiled in (False, True):
        labels = soft.clone().requires_grad_()
        transform = RandomCutMix(num_classes=NUM_CLASSES)
        call = torch.compile(transform, fullgraph=True, backend="eager") if compiled else transform
        torch.manual_seed(0)
        _, mixed = call(images, labels)
        (mixed * torch.arange(NUM_CLASSES)).sum().backward()
        grads.append(labels.grad)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if not case.mixes])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_images_that_record_a_gradient_keep_the_bits_of_their_unchanged_pixels(name: str, dtype: torch.dtype) -> None:
    """Images that record a gradient take the value path (integer bit views carry none): CutSwap and
    CutPaste gathered every pixel as a value, and the CPU gather rewrote the NaN payloads of pixels
    that do not move, in unselected images too (bfloat16 0x7fc1 -> 0xffff, float16 signalling NaN
    0x7c01 -> 0x7e01), where a batch without a graph came back bit for bit."""
    case = CASES[name]
    images = make_images((4, 3, 8, 8)).to(dtype)
    bits = images.view(torch.int16)
    bits[:, :, 0, 0] = 0x7FC1 if dtype == torch.bfloat16 else 0x7C01  # a NaN payload torch does not make
    transform = case.build(generator=gen(3), augmentation_ratio=0.5)
    source = images.clone().requires_grad_(True)
    params = transform.make_params([source])
    out = transform.apply_batched(source, params)
    assert out.requires_grad
    unselected = ~params["selected"]
    assert unselected.any()
    assert torch.equal(out.detach().view(torch.int16)[unselected], bits[unselected])
    out.float().sum().backward()
    assert source.grad is not None and source.grad[unselected].eq(1).all()  # their own gradient, once
