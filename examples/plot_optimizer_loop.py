"""
An optimizer in a NumPy loop
============================

fastgd's optimizers update your own NumPy arrays in place. Here Adam fits a least-squares
model whose gradient is plain NumPy code; the optimizer never sees the loss, only the
gradients, one array per parameter, in the order the parameters were given.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg

rng = np.random.default_rng(0)
X = rng.standard_normal((500, 8)).astype(np.float32)
w_true = rng.standard_normal(8).astype(np.float32)
y = X @ w_true + 0.5 + 0.1 * rng.standard_normal(500).astype(np.float32)

w = np.zeros(8, np.float32)
b = np.zeros(1, np.float32)
opt = fg.Adam([w, b], lr=0.05, clip_norm=10.0)

losses = []
for _ in range(300):
    r = X @ w + b - y                       # residuals
    losses.append(0.5 * float(np.mean(r**2)))
    grad_w = (X.T @ r / len(y)).astype(np.float32)
    grad_b = np.array([r.mean()], np.float32)
    opt.step([grad_w, grad_b])              # w and b change in place, in one fused pass

print(f"final loss {losses[-1]:.5f}, largest weight error {np.abs(w - w_true).max():.3f}")
print(f"gradient norm before clipping at the last step: {opt.last_grad_norm:.2e}")

# %%
# The loss per step, on a log scale:

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(losses)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.set_title("Adam on least squares")
fig.tight_layout()
