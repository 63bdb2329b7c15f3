"""Update rules: stateful optimizers over fused C++ kernels."""

from fastgd.optim._base import Optimizer, clip_coefficient
from fastgd.optim.adadelta import Adadelta
from fastgd.optim.adagrad import Adagrad
from fastgd.optim.adam import Adam, AdamW
from fastgd.optim.adamax import Adamax
from fastgd.optim.lion import Lion
from fastgd.optim.nadam import NAdam
from fastgd.optim.radam import RAdam
from fastgd.optim.registry import OPTIMIZERS, get_optimizer
from fastgd.optim.rmsprop import RMSprop
from fastgd.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion",
           "Optimizer", "clip_coefficient", "OPTIMIZERS", "get_optimizer"]
