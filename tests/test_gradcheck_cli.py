"""gradcheck's flags and messages match the other commands' (issue 18, item 17)."""
from symbackprop.cli import main


def test_init_draws_the_same_numbers_as_the_old_seed_spelling(capsys):
    assert main(["gradcheck", "examples/xor.toml", "--init", "5"]) == 0
    with_init = capsys.readouterr()
    assert main(["gradcheck", "examples/xor.toml", "--seed", "5"]) == 0
    with_seed = capsys.readouterr()
    assert with_init.out == with_seed.out and with_init.err == with_seed.err
    assert main(["gradcheck", "examples/xor.toml", "--init", "6"]) == 0
    assert capsys.readouterr().out != with_init.out           # the seed is used, not ignored


def test_messages_are_prefixed_like_every_other_commands(capsys):
    assert main(["gradcheck", "examples/xor.toml", "--init", "2"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == ["symbackprop gradcheck: note: drew the parameters as a generated trainer's "
                                "init_params(2) draws them (--init 2)"]
    assert not out.startswith("drew")


def test_header_names_a_parameter_the_network_has(capsys):
    assert main(["gradcheck", "examples/cnn.toml"]) == 0            # W1 (a kernel), W5: no W2
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "indices 1-based as in the math: W5[1,2] is row 1, column 2 of W5"
    assert main(["gradcheck", "examples/seed.toml"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "indices 1-based as in the math: W2[1,2] is row 1, column 2 of W2"


def test_index_note_of_kernels_and_vectors():
    from symbackprop.commands.gradcheck import index_note
    assert index_note({"W1": (4, 1, 3, 3), "b1": (4,)}) == ("indices 1-based as in the math: W1[1,1,2,3] is output "
                                                            "channel 1, input channel 1, row 2, column 3 of W1")
    assert index_note({"b1": (3,)}) == "indices 1-based as in the math: b1[2] is element 2 of b1"
