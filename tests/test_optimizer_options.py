"""Options that change between steps: schedules (callables of the step) for lr, weight_decay
and momentum, and edits of param_groups."""

from __future__ import annotations

import numpy as np
import pytest
import reference as R

import fastgd as fg


def test_lr_schedule_uses_step_k_on_the_kth_call():
    p = np.zeros(3)
    seen = []

    def schedule(k):
        seen.append(k)
        return 0.1 * 0.5**k

    opt = fg.SGD([p], lr=schedule)
    for _ in range(4):
        opt.step([np.ones(3)])
    assert seen[-4:] == [0, 1, 2, 3]
    np.testing.assert_allclose(p, -(0.1 + 0.05 + 0.025 + 0.0125))


@pytest.mark.parametrize("rule", R.CLASSES)
def test_schedule_equals_editing_lr_by_hand(rule):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(50)
    b = a.copy()
    lrs = [0.01 * (1 + k % 3) for k in range(6)]
    scheduled = getattr(fg, rule)([a], lr=lambda k: lrs[k])
    manual = getattr(fg, rule)([b], lr=lrs[0])
    for k in range(6):
        g = rng.standard_normal(50)
        manual.param_groups[0]["lr"] = lrs[k]
        scheduled.step([g])
        manual.step([g])
    np.testing.assert_array_equal(a, b)


def test_weight_decay_and_momentum_schedules():
    a, b = np.ones(4), np.ones(4)
    scheduled = fg.SGD([a], lr=0.1, momentum=lambda k: 0.9 if k else 0.5, weight_decay=lambda k: 0.01 * k)
    manual = fg.SGD([b], lr=0.1, momentum=0.5, weight_decay=0.0)
    for k in range(3):
        g = np.full(4, 0.3 + k)
        manual.param_groups[0]["momentum"] = 0.9 if k else 0.5
        manual.param_groups[0]["weight_decay"] = 0.01 * k
        scheduled.step([g])
        manual.step([g])
    np.testing.assert_array_equal(a, b)


def test_schedule_validated_at_step_zero():
    with pytest.raises(ValueError, match="Invalid learning rate"):
        fg.Adam([np.zeros(2)], lr=lambda k: -1.0)
