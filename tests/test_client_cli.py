"""``grpc-chaos client``: a driver described, and what of each profile it will not honour,
before any scenario runs."""

from __future__ import annotations

from chaos.__main__ import main


def test_a_driver_and_what_of_each_profile_it_honours(capsys):
    code = main(["client", "go", "--profile", "recommended", "--profile", "recommended-go"])
    out = capsys.readouterr().out
    assert code == 1  # recommended is not honoured in full by grpc-go
    assert out.startswith("grpc-go 1.33")
    assert "not honoured: grpc.keepalive_time_ms: 500 is below grpc-go" in out
    assert "no policy of the list is: the channel cannot apply this service config" in out
    assert "profile recommended-go: honoured" in out


def test_a_profile_the_driver_honours_in_full_exits_0(capsys):
    assert main(["client", "python", "--profile", "recommended"]) == 0
    assert "profile recommended: honoured" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_4(capsys):
    assert main(["client", "/nonexistent/driver"]) == 4
    assert "cannot run '/nonexistent/driver'" in capsys.readouterr().err
    assert main(["client", "python", "--profile", "nope"]) == 4
    assert "no profile 'nope'" in capsys.readouterr().err
    assert main(["client", "inprocess"]) == 4
