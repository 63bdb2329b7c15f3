"""
Training on data larger than memory
===================================

An estimator takes a memory-mapped array and reads it in blocks of rows, never copying it
whole; or a source of chunks (a generator function, called once per pass), streamed through
a shuffle buffer of bounded size. Here the data set is small, written to a temporary
``.npy`` file so that the example runs in a moment, but the code is the same for a file
larger than memory.
"""

import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg
from fastgd import datasets

X, y = datasets.make_classification(n_samples=20_000, n_features=20, random_state=0, dtype=np.float32)
folder = pathlib.Path(tempfile.mkdtemp())
np.save(folder / "X.npy", X)
np.save(folder / "y.npy", y)
del X, y

X = np.load(folder / "X.npy", mmap_mode="r")        # nothing read yet
y = np.load(folder / "y.npy", mmap_mode="r")
clf = fg.LogisticRegression(batch_size=256, max_epochs=20, random_state=0).fit(X, y)
print(f"memmap: accuracy {clf.score(X, y):.3f} after {len(clf.history_)} epochs")

# %%
# The same data as a stream of chunks, through a shuffle buffer of 5,000 samples (a
# quarter of the data): the buffer bounds the memory, whatever the size of the stream.


def chunks():
    """Called once per pass over the data: four chunks of 5,000 rows, read from the files."""
    X_file = np.load(folder / "X.npy", mmap_mode="r")
    y_file = np.load(folder / "y.npy", mmap_mode="r")
    for start in range(0, len(X_file), 5000):
        yield np.asarray(X_file[start:start + 5000]), np.asarray(y_file[start:start + 5000])


streamed = fg.LogisticRegression(batch_size=256, max_epochs=20, random_state=0)
streamed.fit(fg.ChunkStream(chunks, buffer_size=5000), None)
print(f"stream: accuracy {streamed.score(X, y):.3f}")

# %%
# Both fits' training loss per epoch:

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(clf.history_["epoch"], clf.history_["train_loss"], marker="o", label="memmap")
ax.plot(streamed.history_["epoch"], streamed.history_["train_loss"], marker="s", label="chunks, 5,000-sample buffer")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend()
fig.tight_layout()

# %%
# The files were only for this example:

del X, y
for path in folder.iterdir():
    path.unlink()
folder.rmdir()
