"""The documentation site: its examples run (as the README's do, see docexamples.py), its reference
tables come from the definitions — so a new layer kind, activation, loss or optimizer appears with
no docs edit — and it builds strictly and offline."""
import importlib.util
import re
import subprocess
import sys

import pytest

import docexamples
from docexamples import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _gen():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _gen()


@pytest.fixture(scope="module")
def pages(gen):
    return gen.pages()


@pytest.mark.parametrize("block", docexamples.runnable(PAGES), ids=lambda b: b.id)
def test_the_docs_examples_are_real(block, tmp_path):
    docexamples.run(block, tmp_path)


def test_every_page_is_in_the_nav_and_every_command_has_its_page():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert page.relative_to(DOCS).as_posix() in nav, page
    from symbackprop.cli import COMMANDS
    for command in COMMANDS:
        assert (DOCS / "commands" / f"{command}.md").is_file(), command


def test_every_entry_is_in_the_generated_reference(pages):
    from symbackprop.entries.layers import LAYERS
    from symbackprop.entries.optimizers import HYPERS, OPTIMIZERS
    from symbackprop.entries.registry import ACTIVATIONS, LOSSES
    layers, activations, optimizers = (pages[f"reference/{p}.md"] for p in ("layers", "activations", "optimizers"))
    for name, kind in LAYERS.items():
        assert f"`{name}`" in layers, name
        for field in kind.fields:
            assert f"| `{field.name}` |" in layers and field.doc in layers, (name, field.name)
    for name in [*ACTIVATIONS, *LOSSES]:
        assert f"| `{name}` |" in activations, name
    for name, opt in OPTIMIZERS.items():
        assert f"## `{name}`" in optimizers, name
        for setting, default in opt.defaults:
            assert f"| `{setting}` | `{default}` |" in optimizers, (name, setting)
    for name, hyper in HYPERS.items():
        assert f"| `{name}` | ${hyper.latex}$ | {hyper.domain} |" in optimizers, name


def test_each_family_page_gets_its_kinds_tables(pages):
    from symbackprop.entries.layers import LAYERS
    from symbackprop.entries.layers.base import REQUIRED
    conv = pages["layers/conv.md"]
    assert "<!-- generated" not in conv
    assert "### `conv2d`" in conv and "### `dense`" not in conv
    stride = LAYERS["conv2d"].fields[2]
    assert stride.name == "stride" and stride.default is not REQUIRED
    assert f"| `stride` | a positive integer or a list of 2 | `{stride.default}` | {stride.doc} |" in conv
    assert "| `units` | a positive integer | required | output size |" in pages["layers/dense.md"]
    merged = pages["layers/merge-shape.md"]
    assert "### `add`" in merged and "### `flatten`" in merged


def test_a_new_layer_kind_appears_with_no_docs_edit(gen, monkeypatch):
    """A kind in a family module no page claims gets a page, a row, and its fields' table."""
    from symbackprop.entries.layers import LAYERS
    from symbackprop.entries.layers.base import Field, LayerKind, positive_int

    Kind = type("Elman", (LayerKind,), {"__module__": "symbackprop.entries.layers.elman",
                                        "name": "elman", "doc": "an Elman recurrence", "params": ("W", "U", "b"),
                                        "fields": (Field("hidden", positive_int, doc="the state's size"),)})
    monkeypatch.setitem(LAYERS, "elman", Kind())
    pages = gen.pages()
    assert "[`elman`](../layers/elman.md#elman)" in pages["reference/layers.md"]
    page = pages["layers/elman.md"]
    assert "### `elman`" in page and "| `hidden` | a positive integer | required | the state's size |" in page
    assert "`W<i>`, `U<i>`, `b<i>`" in page


def test_a_new_activation_and_optimizer_appear_with_no_docs_edit(gen, monkeypatch):
    import sympy
    from symbackprop.entries import optimizers as opt
    from symbackprop.entries.registry import ACTIVATIONS, Activation, z
    monkeypatch.setitem(ACTIVATIONS, "mish", Activation("mish", z * sympy.tanh(sympy.log(1 + sympy.exp(z))),
                                                        r"\operatorname{mish}"))
    monkeypatch.setitem(opt.OPTIMIZERS, "signsgd", opt.Optimizer(
        "signsgd", ((opt.theta, opt.theta - opt.lr * sympy.sign(opt.g)),), (("learning_rate", 0.02),)))
    assert "| `mish` |" in gen.activations_page()
    page = gen.optimizers_page()
    assert "## `signsgd`" in page and r"\theta &\leftarrow \theta - \eta \operatorname{sign}{\left(g \right)}" in page
    assert "| `learning_rate` | `0.02` |" in page


def test_every_catalogued_mistake_is_listed(pages):
    mistakes = pages["reference/mistakes.md"]
    for text in ("the 2 of d/da (a − y)² dropped", "Adam without bias correction", "the weight decay left out",
                 "the kernel not flipped in the input gradient", "sent to every element of the window",
                 "dropout's mask left out of the gradient", "the bias ⟨b⟩ left out",
                 # slips whose text is in a kind's text module, or named by a variable in the tuple
                 "the gradient from step t + 1 dropped", "the GRU's z and 1 − z swapped",
                 "the mean over N·T taken over N only", "tanh′ written as 1/(1 − h²)",
                 "the cell-state gradient not carried from step t + 1",
                 "a repeated id's row overwritten", "the softmax's backward without its row-sum term"):
        assert text in mistakes, text
    for name in ("`maxpool1d`, `maxpool2d`", "`batchnorm`, `layernorm`", "`dense`", "`add`", "`embedding`",
                 "`rnn`, `lstm`, `gru`", "`attention`, `posembed`"):
        assert f"### {name}" in mistakes, name


def test_the_flag_tables_come_from_the_parsers(gen, pages):
    from symbackprop.cli import COMMANDS, build_parser
    choices = build_parser()._subparsers._group_actions[0].choices
    cli = pages["reference/cli.md"]
    for command in COMMANDS:
        for action in choices[command]._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    shown = re.compile(rf"[`, ]{re.escape(flag)}(?![\w-])")
                    assert shown.search(cli) and shown.search(pages[f"commands/{command}.md"]), (command, flag)
    trainer = gen._trainer("numpy")
    for build in (trainer.build_parser, trainer.build_predict_parser):
        for action in build()._actions:
            for flag in set(action.option_strings) - {"-h", "--help"}:
                assert re.search(rf"[`, ]{re.escape(flag)}(?![\w-])", pages["reference/trainer.md"]), flag


def test_the_limits_table_is_limits_py(pages):
    import symbackprop.spec.limits as limits
    page = pages["bad-input.md"]
    assert "<!-- generated" not in page
    for name in ("FORMULA_SECONDS", "EXACT_SECONDS", "NESTING", "EXAMPLES_SHOWN", "SAMPLE_EMBEDDED"):
        assert f"| `{name}` | `{getattr(limits, name)}` |" in page, name
    assert "| formula length | 400 characters |" in page
    assert "| expanded JSON formulas | an expanded loss of 3,000 nodes (and 2 layers, 24 parameters) |" in page


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                    reason="the docs extra (mkdocs, mkdocs-material, mkdocstrings, mkdocs-gen-files) is not installed")
def test_the_site_builds_strictly_and_offline(tmp_path):
    site = tmp_path / "site"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DISABLE_MKDOCS_2_WARNING": "true", "HOME": str(tmp_path), "no_proxy": "*",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}   # nothing from the network
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    layers = (site / "reference/layers/index.html").read_text(encoding="utf-8")
    from symbackprop.entries.layers import LAYERS
    for name in LAYERS:
        assert f"<code>{name}</code>" in layers, name
    assert (site / "assets/katex/katex.min.js").is_file()
    assert "symbackprop.api.backprop" in (site / "api/index.html").read_text(encoding="utf-8")
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in html and "<!-- generated:" not in html, page
