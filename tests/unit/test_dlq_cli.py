"""``prodigy-users dlq`` before it touches a database: where it takes its settings from."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigy_users.stack.cli import main


def test_without_settings_it_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PRODIGY_DATABASE_URL", raising=False)
    assert main(["dlq", "list", "identity", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "prodigy-users dlq: PRODIGY_DATABASE_URL is not set" in err
    assert str(tmp_path / "env" / "identity.env") in err


def test_replay_needs_at_least_one_id(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "replay", "identity"])
    assert exited.value.code == 2
    assert "--id" in capsys.readouterr().err


def test_only_the_four_services_have_dead_letters(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dlq", "list", "console"])
    assert "invalid choice: 'console'" in capsys.readouterr().err
