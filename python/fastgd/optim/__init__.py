"""Update rules: stateful optimizers over fused C++ kernels.

One import per rule's class below; the names, the registry and ``fastgd``'s exports follow
from the classes (see :func:`fastgd.optim.rule_classes`).
"""

from fastgd.optim._base import Optimizer, StepOptions, clip_coefficient, rule_classes
from fastgd.optim.adadelta import Adadelta as Adadelta
from fastgd.optim.adagrad import Adagrad as Adagrad
from fastgd.optim.adam import Adam as Adam
from fastgd.optim.adam import AdamW as AdamW
from fastgd.optim.adamax import Adamax as Adamax
from fastgd.optim.lion import Lion as Lion
from fastgd.optim.nadam import NAdam as NAdam
from fastgd.optim.radam import RAdam as RAdam
from fastgd.optim.rmsprop import RMSprop as RMSprop
from fastgd.optim.sgd import SGD as SGD

# isort: split
# After every rule's class: the registry names them.
from fastgd.optim.registry import OPTIMIZERS, get_optimizer

__all__ = [cls.__name__ for cls in rule_classes()]
__all__ += ["Optimizer", "StepOptions", "clip_coefficient", "rule_classes", "OPTIMIZERS", "get_optimizer"]
