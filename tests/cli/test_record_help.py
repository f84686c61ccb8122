"""`python main.py record --help` names every class of the adapter table."""
from __future__ import annotations

import pytest

from massivelens.cli.main import main
from massivelens.engine.core.architectures import SUPPORTED


def test_record_help_lists_every_supported_transformer_class(capsys):
    with pytest.raises(SystemExit) as done:
        main(["record", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in SUPPORTED:
        assert name in text, name
    assert "adapter inferred on its first call" in text
