"""fastgd.save_state / load_state and state_dict(flat=True): an optimizer's state in an .npz that
loads without pickle, and a loaded optimizer that continues with the same bits."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import reference as R

import fastgd as fg
from fastgd import schedules

# Every rule class, with every state array in use.
RULES = R.rule_cases()


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((9, 4)).astype(np.float32), rng.standard_normal(33), rng.standard_normal(17)]


def _grads(seed, params):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def _build(rule, params, options):
    """Two groups: the rule's options, and a second group on a schedule (warm-up into a cosine)."""
    cls = getattr(fg, rule)
    lr = schedules.warmup(schedules.cosine(0.05, T_max=20, eta_min=1e-3), warmup_steps=3)
    return cls([{"params": params[:2]}, {"params": params[2:], "lr": lr}], **options, clip_norm=5.0)


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_saved_state_continues_bit_for_bit(tmp_path, rule, options):
    params = _params()
    opt = _build(rule, params, options)
    for k in range(4):
        opt.step(_grads(k, params))
    path = tmp_path / "opt.npz"
    fg.save_state(path, opt)

    # What is on disk is plain arrays: NumPy reads it without pickle.
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype.kind != "O" for key in data.files)
        assert "state.0." + next(iter(opt.state[0])) in data.files

    copies = [p.copy() for p in params]
    resumed = _build(rule, copies, {})  # other options: the file's are taken
    fg.load_state(path, resumed)
    assert resumed.step_count == opt.step_count == 4
    assert resumed.get_last_lr() == opt.get_last_lr()
    assert isinstance(resumed.param_groups[1]["lr"], schedules.Schedule)
    assert resumed.param_groups[1]["lr"].get_config() == opt.param_groups[1]["lr"].get_config()
    for k in range(4, 9):
        opt.step(_grads(k, params))
        resumed.step(_grads(k, copies))
    for a, b in zip(params, copies):
        assert a.tobytes() == b.tobytes()
    for i in range(len(params)):
        assert opt.state[i].keys() == resumed.state[i].keys()
        for name in opt.state[i]:
            assert opt.state[i][name].tobytes() == resumed.state[i][name].tobytes()


def test_flat_state_dict_is_what_np_savez_writes_and_np_load_reads(tmp_path):
    params = _params()
    opt = fg.Adam(params, lr=schedules.step_decay(0.1, step_size=2), betas=(0.8, 0.99), amsgrad=True)
    for k in range(3):
        opt.step(_grads(k, params))
    flat = opt.state_dict(flat=True)
    assert all(isinstance(v, np.ndarray) for v in flat.values())
    np.savez(tmp_path / "s.npz", **flat)
    copies = [p.copy() for p in params]
    other = fg.Adam(copies)
    with np.load(tmp_path / "s.npz") as data:
        other.load_state_dict(data)
    assert other.param_groups[0]["betas"] == (0.8, 0.99) and other.param_groups[0]["amsgrad"] is True
    assert other.state_dict(flat=True).keys() == flat.keys()
    opt.step(_grads(9, params))
    other.step(_grads(9, copies))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params, copies))


def test_torch_state_dict_is_refused_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    w = torch.zeros(3, requires_grad=True)
    topt = torch.optim.Adam([w], lr=0.1)
    w.grad = torch.ones(3)
    topt.step()
    opt = fg.Adam([np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="not a fastgd state dict.*torch"):
        opt.load_state_dict(topt.state_dict())
    torch.save(topt.state_dict(), tmp_path / "torch.pt")
    with pytest.raises(ValueError, match="not a fastgd state dict"):
        fg.load_state(tmp_path / "torch.pt", opt)
    assert opt.step_count == 0


@pytest.mark.parametrize("what", ["other npz", "npy", "text", "model file"])
def test_files_not_written_by_save_state_are_refused(tmp_path, what):
    path = tmp_path / "f"
    if what == "other npz":
        np.savez(path, state=np.zeros(3), param_groups=np.zeros(1))
        path = tmp_path / "f.npz"
    elif what == "npy":
        np.save(path, np.zeros(3))
        path = tmp_path / "f.npy"
    elif what == "text":
        path.write_text("lr,0.1\n")
    else:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 3))
        fg.LinearRegression(solver="newton").fit(X, X @ [1.0, 2.0, 3.0]).save(path)
    opt = fg.SGD([np.zeros(3)])
    with pytest.raises(ValueError, match="not a fastgd state dict") as e:
        fg.load_state(path, opt)
    if what == "model file":
        assert "fastgd.load" in str(e.value)


def test_a_state_of_another_rule_or_shape_changes_nothing(tmp_path):
    params = _params()
    opt = fg.Adam(params)
    opt.step(_grads(0, params))
    fg.save_state(tmp_path / "adam.npz", opt)
    sgd = fg.SGD([p.copy() for p in params], lr=0.1)
    with pytest.raises(ValueError, match="Adam"):
        fg.load_state(tmp_path / "adam.npz", sgd)
    small = fg.Adam([np.zeros(3, np.float32), np.zeros(2), np.zeros(1)])
    with pytest.raises(ValueError, match="does not match"):
        fg.load_state(tmp_path / "adam.npz", small)
    assert small.step_count == 0 and all(not st for st in small.state.values())


def test_a_callable_lr_that_is_no_schedule_has_no_file_form(tmp_path):
    opt = fg.SGD([np.zeros(3)], lr=lambda t: 0.1 / (t + 1))
    with pytest.raises(TypeError, match="not a\\s+fastgd.schedules schedule"):
        fg.save_state(tmp_path / "s.npz", opt)
    assert not (tmp_path / "s.npz").exists()


def test_load_state_reads_within_max_bytes(tmp_path):
    params = [np.zeros(100_000)]
    opt = fg.Adam(params)
    opt.step([np.ones(100_000)])
    fg.save_state(tmp_path / "s.npz", opt)
    with pytest.raises(ValueError, match="max_bytes"):
        fg.load_state(tmp_path / "s.npz", fg.Adam([np.zeros(100_000)]), max_bytes=100_000)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    opt = fg.SGD([np.zeros(3)])
    flat = opt.state_dict(flat=True)
    path = tmp_path / "bomb.npz"
    np.savez(path, **flat)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("state.0.momentum_buffer.npy", b"\0" * (64 << 20))
    with pytest.raises(ValueError, match="not a fastgd state dict.*zip bomb"):
        fg.load_state(path, opt)


# -- get_last_lr and the current value of a scheduled option ------------------------------------

def test_get_last_lr_is_the_lr_of_the_last_step_per_group():
    lr = schedules.exponential(0.1, gamma=0.5)
    p, q = np.zeros(3), np.zeros(2)
    opt = fg.SGD([{"params": [p], "lr": lr}, {"params": [q], "lr": 0.01}], momentum=0.9)
    assert opt.get_last_lr() == [0.1, 0.01]  # before any step: what the first one uses
    for k in range(3):
        opt.step([np.ones(3), np.ones(2)])
        assert opt.get_last_lr() == [lr(k), 0.01]
    # The values the next step uses, every scheduled option evaluated.
    assert opt.group_options()["lr"] == lr(3)
    assert opt.group_options(1)["lr"] == 0.01
    assert opt.group_options(step=0)["lr"] == 0.1
    assert opt.group_options()["momentum"] == 0.9 and "params" not in opt.group_options()
    with pytest.raises(IndexError):
        opt.group_options(2)


def test_get_last_lr_matches_what_the_history_records():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    w = np.zeros(3)

    def loss_and_grad(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return float(r @ r / len(yb)), [2 * Xb.T @ r / len(yb)]

    opt = fg.SGD([w], lr=schedules.step_decay(0.1, step_size=3, gamma=0.5))
    history = fg.train(loss_and_grad, [w], X, y, optimizer=opt, batch_size=16, max_epochs=3)
    assert opt.get_last_lr() == [history[-1]["lr"]]
