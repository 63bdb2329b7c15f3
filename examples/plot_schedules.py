"""
Learning-rate schedules
=======================

A schedule is a plain function of the step, checked when it is built. Pieces compose:
``warmup`` in front of any schedule, ``join`` one after another. An optimizer takes one
wherever it takes a float for ``lr`` (or ``weight_decay``, ``momentum``); its k-th step
uses ``schedule(k)``.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg
from fastgd import schedules

steps = np.arange(1000)
examples = {
    "step_decay(0.1, step_size=300)": schedules.step_decay(0.1, step_size=300, gamma=0.3),
    "warmup(cosine(0.1, T_max=900), 100)": schedules.warmup(schedules.cosine(0.1, T_max=900), warmup_steps=100),
    "one_cycle(0.1, total_steps=1000)": schedules.one_cycle(0.1, total_steps=1000),
    "cyclic(0.01, 0.1, step_size_up=250)": schedules.cyclic(0.01, 0.1, step_size_up=250),
}

fig, ax = plt.subplots(figsize=(7, 4))
for label, schedule in examples.items():
    ax.plot(steps, [schedule(int(t)) for t in steps], label=label)
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# An optimizer driven by a schedule reads it at every step:

w = np.zeros(4, np.float32)
lr = schedules.warmup(schedules.cosine(0.1, T_max=900), warmup_steps=100)
opt = fg.SGD([w], lr=lr, momentum=0.9, nesterov=True)
for _ in range(150):
    opt.step([np.ones(4, np.float32)])
print(f"after 150 steps the schedule gives lr = {lr(150):.5f}")
