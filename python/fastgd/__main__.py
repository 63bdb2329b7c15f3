"""``python -m fastgd``: the fastgd command line (:mod:`fastgd.cli`): ``demo``, ``train`` and
``predict``."""

from fastgd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
