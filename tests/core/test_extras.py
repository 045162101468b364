import pytest

from lnlens_core.cli import main
from lnlens_core.errors import MissingExtra
from lnlens_core.extras import require


def test_present_module_is_returned():
    assert require("json", extra="cln", what="test").dumps([]) == "[]"


def test_missing_extra_names_the_pip_line():
    with pytest.raises(MissingExtra) as info:
        require("lnlens_no_such_module", extra="lnd", what="the LND sidecar")
    assert str(info.value) == "the LND sidecar needs the 'lnlens_no_such_module' package: pip install 'lnlens[lnd]'"
    assert isinstance(info.value, ImportError)


def test_a_command_whose_adapter_cannot_load_fails_with_the_pip_line(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    import lnlens_core.cli as cli

    broken = EntryPoint(name="broken", value="lnlens_no_such_adapter.cli:register", group="lnlens.cli")

    def fake_entry_points(group):
        return [broken] if group == "lnlens.cli" else []

    def fail_load(self):
        return require("lnlens_no_such_adapter", extra="lnd", what="'lnlens broken'")

    monkeypatch.setattr(cli, "entry_points", fake_entry_points)
    monkeypatch.setattr(EntryPoint, "load", fail_load)
    assert main(["broken", "run"]) == 1
    assert "pip install 'lnlens[lnd]'" in capsys.readouterr().err


def test_a_command_loads_no_other_adapter(monkeypatch):
    """``lnlens lnd run`` (or ``lnlens monitor``) does not import another adapter's commands: the simulator's
    pulled in numba and scipy, ~120 MB of the LND sidecar's RSS for its life (issue 16). Without a command
    (``--help``) or with an unknown one, every adapter is listed."""
    import lnlens_core.cli as cli

    loaded = []

    class Adapter:
        def __init__(self, name):
            self.name = name

        def load(self):
            def register(sub):
                loaded.append(self.name)
                sub.add_parser(self.name, help=f"the {self.name} adapter")

            return register

    monkeypatch.setattr(cli, "entry_points", lambda group: [Adapter("sim"), Adapter("lnd")] if group == "lnlens.cli"
                        else [])  # fmt: skip
    everything = ["lnd", "sim"]
    for argv, wanted in ((["-v", "--config", "lnd", "lnd"], ["lnd"]), (["--db=x", "-vv", "sim"], ["sim"]),
                         (["monitor", "--duration", "1h"], []), (["--help"], everything),
                         (["--db", "sim"], everything), (["nope"], everything), ([], everything)):  # fmt: skip
        loaded.clear()
        parser = cli.build_parser(argv)
        assert loaded == wanted, argv
        if wanted == ["lnd"]:
            assert parser.parse_args(argv).config == "lnd"
    loaded.clear()
    cli.build_parser()
    assert loaded == everything
