"""Sphinx configuration of fastgd's documentation.

Build (fastgd importable: installed, or ``PYTHONPATH=python`` next to a built ``_core``)::

    pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Why these extensions:

- ``autodoc`` + ``autosummary``: the API reference is generated from the package. Each module
  page lists what the module's ``__all__`` exports, so a new optimizer, schedule or estimator
  gets its page when it is exported, with no list here to edit.
- ``napoleon``: the docstrings are written in Google style (``Args:``) and, for the
  estimators, NumPy style (``Parameters``); napoleon reads both, and ships with Sphinx.
- ``mathjax``: the update rules and schedules state their math in LaTeX inside reST's
  ``.. math::`` directive and ``:math:`` role. MathJax renders it in the browser, so the build
  needs no LaTeX installation (``imgmath`` would need latex and dvipng). Its ``textmacros``
  package makes ``\\_`` inside ``\\text{...}`` an underscore, as in LaTeX.
- ``sphinx_gallery``: the scripts in ``examples/`` run at every build and their output and
  figures go into the pages, so an example that stops working fails the build.
"""

from __future__ import annotations

import fastgd

project = "fastgd"
author = "the fastgd developers"
copyright = "the fastgd developers"  # noqa: A001  (Sphinx's name)
release = fastgd.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "README.md"]
root_doc = "index"

# API reference: pages generated at build time from the modules' __all__.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False

mathjax3_config = {
    "loader": {"load": ["[tex]/textmacros"]},
    "tex": {"packages": {"[+]": ["textmacros"]}},
}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",          # every example runs when the docs build
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "download_all_examples": False,
    "image_scrapers": ("matplotlib",),
}

html_theme = "alabaster"
html_title = f"fastgd {release}"
html_static_path: list[str] = []
