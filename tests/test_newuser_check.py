"""``check``'s verdicts of issue 18, items 1-4: max-pool ties judged jointly, the untrained layers of
a step, what an ok number carries forward, and the diagnoses of a transposed kernel and of a tie's
gradient sent to every tied maximum."""
import sys
from pathlib import Path

import numpy as np
import pytest

from symbackprop import Network
from symbackprop.check.judge import check, load_hand, parse_hand
from symbackprop.spec.network import load

sys.path.insert(0, str(Path(__file__).parent))
from test_check_layers import CONV, build, conv_input_grad, run, tied_network, truth  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIE_TEXT = "sent to every tied maximum"


def text(v) -> str:
    return f"{v:.10g}"


@pytest.fixture(scope="module")
def tied():
    """z1's first 2×2 window holds 1.1 twice (positions (1, 1) and (1, 2)); g is that window's gradient."""
    return tied_network()


def judged(net, values) -> dict:
    return {r.label: r for r in check(net, parse_hand({"values": values}, net))}


# item 1 -----------------------------------------------------------------------------------------
def test_full_gradient_to_both_tied_maxima_is_wrong_where_it_breaks_and_what_follows_carried(tied):
    net, g = tied
    r = judged(net, {"dC/da1": [[[text(g), text(g)], ["0", "0"]]], "grad.b1": text(2 * g)})
    assert r["dC/da1[1][1][1]"].status == "ok"              # a share of the whole, so far
    assert r["dC/da1[1][1][2]"].status == "wrong"           # the shares now sum past the whole
    assert TIE_TEXT in r["dC/da1[1][1][2]"].diagnosis
    assert r["grad.b1[1]"].status == "carried"
    assert [r[k].status for k in ("dC/da1[1][2][1]", "dC/da1[1][2][2]")] == ["ok", "ok"]


def test_doubled_later_number_is_wrong_with_or_without_the_tied_gradients_written(tied):
    net, g = tied
    alone = judged(net, {"grad.b1": text(2 * g)})["grad.b1[1]"]
    assert alone.status == "wrong" and TIE_TEXT in alone.diagnosis
    assert alone.expected == pytest.approx(g, rel=1e-12)
    after = judged(net, {"dC/da1": [[[text(g), "0"], ["0", "0"]]], "grad.b1": text(2 * g)})["grad.b1[1]"]
    assert after.status == "wrong"


@pytest.mark.parametrize("share", [1.0, 0.5, 0.25, 0.0])
def test_any_split_of_the_window_s_gradient_is_ok(tied, share):
    net, g = tied
    r = judged(net, {"dC/da1": [[[text(share * g), text((1 - share) * g)], ["0", "0"]]], "grad.b1": text(g)})
    assert {x.status for x in r.values()} == {"ok"}


def test_shares_falling_short_of_the_whole_are_wrong_at_the_last(tied):
    net, g = tied
    r = judged(net, {"dC/da1": [[[text(g / 4), text(g / 4)], ["0", "0"]]]})
    assert [r["dC/da1[1][1][1]"].status, r["dC/da1[1][1][2]"].status] == ["ok", "wrong"]


# item 2 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop", [(), ("new.z1",), ("new.a1",), ("new.z1", "new.a1")])
def test_untrained_layer_s_new_values_are_the_person_s_own(drop):
    net = load(ROOT / "examples/seed.toml")
    hand = load_hand(ROOT / "examples/seed-hand.toml", net)
    values = {f"{n}{''.join(f'[{i + 1}]' for i in idx)}": w.text for (n, idx), w in hand.values.items()
              if n not in drop}
    results = {r.label: r for r in check(net, parse_hand({"values": values, "optimizer": {"name": "sgd", "train": ["W2", "b2"]}}, net))}
    assert results["new.z2[1]"].status == "carried", results["new.z2[1]"]
    assert not any("from before the step" in (r.diagnosis or "") for r in results.values())
    assert all(results[k].status == "ok" for k in results if k.startswith(("new.z1", "new.a1")))


def test_a_trained_layer_still_needs_its_new_values():
    """With every layer trained, new.z2 computed from the a1 before the step is still that mistake."""
    net = load(ROOT / "examples/seed.toml")
    results = {r.label: r for r in check(net, parse_hand({"values": {"a1": ["0.289050", "0.574443"],
               "new.z2": "0.387551"}, "optimizer": {"name": "sgd", "learning_rate": 0.1}}, net))}
    assert results["new.z2[1]"].status == "wrong"
    assert "a1 from before the step used" in results["new.z2[1]"].diagnosis


# item 3 -----------------------------------------------------------------------------------------
def _chain():
    """z1 = 0.9 · 2 = 1.8 exactly; z2 = 2.2 · 1.8 + 0.044 = 4.004."""
    return Network.from_dict({"network": {"layers": [1, 1, 1], "activations": ["identity", "identity"],
                                          "loss": "squared_error"},
                              "parameters": {"W1": [[0.9]], "b1": [0.0], "W2": [[2.2]], "b2": [0.044]},
                              "sample": {"x": [2], "y": [1]}})


def test_an_ok_number_carries_forward_only_what_its_inputs_allow():
    net = _chain()
    r = judged(net, {"z1": "1.8", "z2": "4.001"})
    assert r["z1[1]"].status == "ok"
    assert r["z2[1]"].status == "wrong"                    # [1.75, 1.85] would have let 4.001 pass
    assert judged(net, {"z1": "1.8", "z2": "4.004"})["z2[1]"].status == "ok"


def test_a_number_used_as_written_still_carries():
    """The seed's loss is (0.589 - 1)², from its rounded a2: the written number itself carries."""
    net = _chain()
    assert judged(net, {"z1": "1.8", "a1": "1.8", "z2": "4.0"})["z2[1]"].status == "ok"
    assert judged(net, {"z1": "1.8", "z2": "3.96"})["z2[1]"].status == "wrong"


# item 4 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [None, 2])
def test_kernel_transposed_instead_of_rotated_is_named(batch):
    net = build(*CONV, batch=batch)
    T, W = truth(net), net.parameters["W2"]
    d2, a1 = (T["delta2"], T["a1"]) if batch else (T["delta2"][None], T["a1"][None])
    # the full correlation of δ with Wᵀ where rot180(W) belongs: the forward kernel rot180(Wᵀ)
    anti = W.transpose(0, 1, 3, 2)[:, :, ::-1, ::-1]
    wrong = np.stack([conv_input_grad(d, anti, a1.shape[2:], (2, 2), (1, 1)) for d in d2])
    wrong = wrong if batch else wrong[0]
    results = run(net, {"delta2": T["delta2"], "dC/da1": wrong, "delta1": wrong * (1 - T["a1"] ** 2)})
    bad = [r for r in results.values() if r.name == "dC/da1" and r.status == "wrong"]
    assert len(bad) >= 4
    assert all("kernel transposed instead of rotated by 180°" in r.diagnosis for r in bad), [r.diagnosis for r in bad]
    assert all(r.status in ("carried", "ok") for r in results.values() if r.name == "delta1")
    assert any(r.status == "carried" for r in results.values() if r.name == "delta1")


def test_the_tie_slip_is_a_catalogued_entry_slip():
    from symbackprop.entries.layers.pool import MAXPOOL2D
    from symbackprop.check.graph import CheckGraph
    from symbackprop.check.slipbook import SlipBook
    net = build([1, 4, 4], [dict(type="maxpool2d", kernel=2), dict(type="flatten"), dict(type="dense", units=1)], "mse")
    book = SlipBook(CheckGraph(net, {}, [], None))
    lm = book.graph.model.layers[0]
    assert lm.layer.kind is MAXPOOL2D
    texts = [text for slip in book(lm) for _, text in slip.where.values()]
    assert any(TIE_TEXT in t for t in texts)
