"""LeNet-5, VGG-11, ResNet-18 and a small U-Net against equivalent torch.nn models loaded with the
same weights through state_dict (so names and layouts must match torchvision's): forward outputs
and every parameter gradient, in training mode (batch-norm batch statistics)."""
import numpy as np
import pytest

from cnnfast import init, models
from helpers import assert_close

torch = pytest.importorskip("torch")
from reference_models_torch import TorchResNet18, TorchUNet, TorchVGG, torch_lenet5  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded_init(rng):
    """Each model's weights come from this test's stream, not from whatever the tests before it
    left in the global init generator (so a failure reproduces with CNNFAST_TEST_SEED alone)."""
    init.seed(int(rng.integers(1 << 30)))


def compare(ours, theirs, x, rng, tol=2e-4):
    """Loads ours' weights into theirs (strict: same names and shapes), then compares the forward
    and the gradients of sum(y * g) for the input and every parameter."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()}, strict=True)
    theirs.train()
    y = ours(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    assert_close(y, yt.detach().numpy(), tol, "forward")
    g = rng.standard_normal(y.shape).astype(np.float32)
    ours.zero_grad()
    gx = ours.backward(g)
    yt.backward(torch.from_numpy(g))
    assert_close(gx, xt.grad.numpy(), tol, "input gradient")
    tgrads = dict(theirs.named_parameters())
    assert set(tgrads) == {n for n, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        assert_close(p.grad, tgrads[name].grad.numpy(), tol, name)


def test_lenet5_matches_torch(rng):
    compare(models.lenet5(10), torch_lenet5(10),
            rng.standard_normal((4, 1, 28, 28)).astype(np.float32), rng)


def test_vgg11_matches_torch(rng):
    ours = models.vgg11(5, width=1 / 16, hidden=24, dropout=0.0)
    widths = [v if v == "M" else max(1, round(v / 16)) for v in models.vgg.CONFIGS[11]]
    compare(ours, TorchVGG(widths, 5, 24), rng.standard_normal((2, 3, 32, 32)).astype(np.float32),
            rng)


def test_resnet18_matches_torch(rng):
    # 64x64 so that the last stage's batch norm averages over 16 values, not 4 (a 1x1 map over a
    # batch of 4 makes the float32 gradient comparison ill-conditioned).
    compare(models.resnet18(6, width=8), TorchResNet18(8, 6),
            rng.standard_normal((4, 3, 64, 64)).astype(np.float32), rng, tol=1e-3)


@pytest.mark.parametrize("padding, size", [("same", 24), ("valid", 44)])
def test_small_unet_matches_torch(padding, size, rng):
    ours = models.unet(2, 3, depth=2, width=4, padding=padding)
    compare(ours, TorchUNet(2, 3, 2, 4, 1 if padding == "same" else 0),
            rng.standard_normal((2, 2, size, size + 2)).astype(np.float32), rng)
