"""The registry checks itself: one entry per name, everything derivable, everything documented."""
from pathlib import Path

import numpy as np
import pytest
import sympy

from symbackprop.numeric.values import LAMBDIFY_MODULES
from symbackprop.entries.registry import ACTIVATIONS, LOSSES, a, y, z


def _reference() -> str:
    """The docs' activations-and-losses page, as docs/gen_reference.py writes it from the registry."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_reference", Path(__file__).resolve().parent.parent
                                                  / "docs/gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.activations_page()


REFERENCE = _reference()


def test_tables_are_one_to_one():
    assert all(name == act.name for name, act in ACTIVATIONS.items())
    assert all(name == loss.name for name, loss in LOSSES.items())
    assert len({act.latex for act in ACTIVATIONS.values()}) == len(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_is_sympys_and_finite_on_its_domain(name):
    act = ACTIVATIONS[name]
    assert act.derivative == sympy.diff(act.expr, z)
    assert not act.derivative.has(sympy.Derivative, sympy.Heaviside)  # fully evaluated, our kink rule
    points = np.linspace(*act.domain, 41)
    points = points[np.all([np.abs(points - k) > 1e-3 for k in act.kinks] or [True], axis=0)]
    values = sympy.lambdify(z, act.derivative, LAMBDIFY_MODULES)(points)
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("name", LOSSES)
def test_loss_derivative_is_sympys(name):
    loss = LOSSES[name]
    assert loss.derivative == sympy.diff(loss.term, a)
    assert loss.total([a], [y]) == loss.scale.subs(sympy.Symbol("n", positive=True, integer=True), 1) * loss.term
    assert sympy.latex(loss.formula())


@pytest.mark.parametrize("name", [*ACTIVATIONS, *LOSSES])
def test_every_entry_is_documented_in_the_reference(name):
    assert f"| `{name}` |" in REFERENCE


def test_the_generate_command_spells_out_the_generators_choices():
    import symbackprop.commands.generate as command
    import symbackprop.codegen.trainer as generate
    from symbackprop.entries.optimizers import OPTIMIZERS
    assert (command.DTYPES, command.FORMS, command.BACKENDS) == (tuple(generate.DTYPES), tuple(generate.FORMS),
                                                                 tuple(generate.BACKENDS))
    assert command.OPTIMIZERS == tuple(OPTIMIZERS)


def test_every_package_is_installed_by_pyproject():
    """A non-editable install ships only the packages pyproject names (symbackprop.commands was once
    missing: editable installs hid it); templates/ is shipped as symbackprop.templates."""
    import tomllib
    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "symbackprop").rglob("__init__.py")}
    assert found | {"symbackprop.templates"} == set(config["packages"])
    assert config["package-dir"]["symbackprop.templates"] == "templates"
