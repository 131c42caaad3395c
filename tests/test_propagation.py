"""Prop. 1 and Prop. 2 instrumentation against closed forms (linear residual nets) and against
Jacobians formed explicitly by torch.autograd.functional.jacobian."""
import math

import pytest
import torch
import torch.nn.functional as F

import nsde_lib as nl
from nsde_lib import block_weight_norms, kept_state
from nsde_lib import EulerResNet

pytestmark = pytest.mark.usefixtures("float64")  # numbers compared in float64


def linear_net(matrices, h, n_classes=3):
    """A residual net whose blocks are F_i(x) = A_i x: identity activation, no bias, W2 = I."""
    d = matrices[0].shape[0]
    model = EulerResNet(d, n_classes, depth=len(matrices), width=d, h=h, bn=False,
                        act="identity")
    with torch.no_grad():
        for block, A in zip(model.blocks, matrices):
            first, second = block.F[0], block.F[2]
            first.weight.copy_(A)
            second.weight.copy_(torch.eye(d))
            first.bias.zero_()
            second.bias.zero_()
    return model


def with_singular_values(d, values, seed):
    gen = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
    V, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
    return U @ torch.diag(torch.tensor(values)) @ V.T


@pytest.mark.parametrize("h", [1.0, 0.1])
def test_state_gradients_of_a_linear_net_match_the_closed_form(h):
    torch.manual_seed(0)
    d, depth, B = 4, 6, 9
    As = [torch.randn(d, d) / 2 for _ in range(depth)]
    model = linear_net(As, h)
    x, y = torch.randn(B, d), torch.randint(0, 3, (B,))
    norms = nl.state_grad_norms(model, x, y)
    # forward: X_{n+1} = X_n (I + h A_n)ᵀ; backward: G_n = G_{n+1} (I + h A_n)
    X = x
    for A in As:
        X = X @ (torch.eye(d) + h * A).T
    W_head, b_head = model.head.weight.detach(), model.head.bias.detach()
    p = torch.softmax(X @ W_head.T + b_head, dim=1)
    G = (p - F.one_hot(y, 3)) / B @ W_head           # ∂(mean CE)/∂X_D
    expected = [G.norm()]
    for A in reversed(As):
        G = G @ (torch.eye(d) + h * A)
        expected.append(G.norm())
    torch.testing.assert_close(norms, torch.stack(expected[::-1]), rtol=1e-10, atol=0)


def test_jacobian_norm_of_a_linear_block_is_its_spectral_norm():
    As = [with_singular_values(5, [3.0, 1.5, 1.0, 0.5, 0.1], seed=s) for s in range(3)]
    model = linear_net(As, 0.5)
    W = nl.jacobian_norms(model, torch.randn(8, 5), n_iter=200, tol=1e-12)
    torch.testing.assert_close(W, torch.tensor([3.0, 3.0, 3.0]), rtol=1e-8, atol=0)


@pytest.mark.parametrize("train_mode", [True, False])
def test_jacobian_norm_with_batchnorm_matches_the_full_batch_jacobian(train_mode):
    """In training mode BN couples the samples: compare with the (B·d × B·d) Jacobian."""
    torch.manual_seed(1)
    model = EulerResNet(3, 2, depth=2, width=3, hidden=5, h=0.5, bn=True, act="tanh")
    x = torch.randn(6, 3)
    with torch.no_grad():  # give eval mode statistics that are not the identity
        model.train()
        for _ in range(3):
            model(x + 0.3 * torch.randn(6, 3))
    W = nl.jacobian_norms(model, x, n_iter=150, tol=1e-12, train_mode=train_mode)
    with kept_state(model, train_mode):
        x0 = model.stem(x)
        x1 = x0 + 0.5 * model.blocks[0](x0)
        for i, state in enumerate([x0, x1]):
            J = torch.autograd.functional.jacobian(model.blocks[i], state.detach())
            exact = torch.linalg.matrix_norm(J.reshape(18, 18), ord=2)
            assert abs(float(W[i]) - float(exact)) < 1e-6 * float(exact)


@pytest.mark.parametrize("h", [0.1, 0.5, 1.0])
def test_prop1_holds_for_a_nonlinear_net(h):
    torch.manual_seed(2)
    model = EulerResNet(4, 3, depth=10, width=4, hidden=16, h=h, bn=False, act="tanh")
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    g = nl.state_grad_norms(model, x, y)
    W = nl.jacobian_norms(model, x, n_iter=150, tol=1e-12)
    ratio = float(g[0] / g[-1])
    assert ratio <= nl.product_bound(h, W) * (1 + 1e-9)
    assert nl.product_bound(h, W) <= nl.prop1_bound(h, float(W.max()), 10) * (1 + 1e-12)


def test_prop1_bound_is_the_proofs_sum_and_dominates_the_product_for_h_up_to_1():
    W, D = 0.7, 12
    for h in (0.01, 0.1, 0.5, 1.0):
        proof_sum = 1 + h * sum(W * (1 + W) ** i for i in range(D))   # eq. 10, second line
        assert math.isclose(nl.prop1_bound(h, W, D), proof_sum, rel_tol=1e-12)
        assert nl.product_bound(h, [W] * D) <= nl.prop1_bound(h, W, D)
    assert math.isclose(nl.prop1_bound(1.0, W, D), (1 + W) ** D, rel_tol=1e-12)
    # for h > 1 the paper's expression is no longer a bound: (1 + hW)^D overtakes it
    assert nl.product_bound(3.0, [W] * D) > nl.prop1_bound(3.0, W, D)
    assert nl.prop1_bound(1.0, 1e3, 400) == math.inf


@pytest.mark.parametrize("call,name", [
    (lambda: nl.prop1_bound(0.0, 1.0, 3), "h"), (lambda: nl.prop1_bound(0.1, -1.0, 3), "W"),
    (lambda: nl.prop1_bound(0.1, 1.0, 0), "depth"), (lambda: nl.product_bound(-1, [1.0]), "h"),
    (lambda: nl.product_bound(0.1, [-1.0]), "W"),
])
def test_bad_bound_arguments_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_perturbation_of_a_linear_net_follows_the_matrix_power():
    torch.manual_seed(3)
    d, depth, h, eps = 3, 5, 0.3, 0.01
    As = [torch.randn(d, d) for _ in range(depth)]
    model = linear_net(As, h)
    x = torch.randn(4, d)
    out = nl.perturbation_growth(model, x, eps, relative=False, seed=7)
    u = torch.randn(4, d, generator=torch.Generator().manual_seed(7))
    delta = eps * u / u.norm(dim=1, keepdim=True)
    expected = [float(delta.norm(dim=1).mean())]
    for A in As:
        delta = delta @ (torch.eye(d) + h * A).T
        expected.append(float(delta.norm(dim=1).mean()))
    torch.testing.assert_close(out["gap"], torch.tensor(expected), rtol=1e-10, atol=0)
    assert float(out["ratio"][0]) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("h", [1.0, 0.1])
def test_product_of_jacobian_norms_bounds_every_gap_of_a_linear_net(h):
    """Linear blocks: their Jacobian norms are their Lipschitz constants, so ε·Π(1 + h·W_i)
    bounds every sample's gap (what chapter 02 checks, without that guarantee, on trained nets)."""
    torch.manual_seed(6)
    model = linear_net([torch.randn(4, 4) for _ in range(6)], h)
    x = torch.randn(16, 4)
    out = nl.perturbation_growth(model, x, 0.1)
    W = nl.jacobian_norms(model, x, n_iter=300, tol=1e-13, train_mode=False)
    assert (out["ratio_max"] >= out["ratio"] * (1 - 1e-12)).all()
    assert float(out["ratio_max"][-1]) <= nl.product_bound(h, W) * (1 + 1e-9)


@pytest.mark.parametrize("h", [1.0, 0.1])
def test_prop2_bound_holds_and_small_h_keeps_the_gap_small(h):
    torch.manual_seed(4)
    model = EulerResNet(2, 2, depth=20, width=2, hidden=16, h=h, bn=False, act="tanh")
    out = nl.perturbation_growth(model, torch.randn(64, 2), 0.05)
    assert (out["gap"] <= out["bound"] * (1 + 1e-12)).all()
    assert (out["ratio"] <= out["bound_ratio"] * (1 + 1e-12)).all()
    if h == 0.1:
        assert float(out["ratio"][-1]) < 3.0


def test_measurements_leave_bn_statistics_and_mode_untouched():
    torch.manual_seed(5)
    model = EulerResNet(1, 10, depth=2, width=4, block="conv", pool=2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(8, 1, 12, 12), torch.randint(0, 10, (8,))
    nl.state_grad_norms(model, x, y)
    nl.jacobian_norms(model, x, n_iter=3)
    nl.perturbation_growth(model, x, 0.1, train_mode=True)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_weight_norm_recorder_sees_every_iteration_before_its_step():
    torch.manual_seed(6)
    model = EulerResNet(2, 2, depth=3, width=2, hidden=8, bn=False).float()
    start = block_weight_norms(model)
    (train, test) = nl.moons(64, 32, noise=0.1, seed=0)
    rec = nl.WeightNormRecorder()
    history = nl.fit(model, train, test, epochs=2, batch_size=16, lr=0.05, forward=rec,
                     grad_norms=True, progress=False, device="cpu")
    assert len(rec.norms) == len(history.grad_norms) == 2 * 4
    assert rec.norms[0] == pytest.approx(start, rel=1e-6)
    assert rec.norms[-1] != pytest.approx(start, rel=1e-6)


def test_prop2_bound_is_eq_12_and_checks_its_arguments():
    assert nl.prop2_bound(0.1, 0.1, 32, 1.0) == pytest.approx(3.3)
    assert nl.prop2_bound(0.2, 1.0, 0, 5.0) == 0.2
    for args, name in (((0.1, 0.0, 3, 1.0), "h"), ((-0.1, 0.1, 3, 1.0), "eps"),
                       ((0.1, 0.1, -1, 1.0), "depth"), ((0.1, 0.1, 3, -1.0), "W")):
        with pytest.raises(ValueError, match=name):
            nl.prop2_bound(*args)
