"""The one scaffold behind every generator's write and `--check` (shared/plumbing/generated_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.plumbing.generated_files import Generator


class SourceError(ValueError):
    pass


def generator(root: Path, files: dict[Path, str | bytes]) -> Generator:
    def render(_root: Path) -> dict[Path, str | bytes]:
        if "broken" in files.values():
            raise SourceError("the source is broken")
        return files

    return Generator(
        command="python -m example",
        description="An example generator.",
        render=render,
        root=root,
        owned=("schemas/*.json",),
        errors=(SourceError,),
    )


def test_a_written_tree_passes_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files: dict[Path, str | bytes] = {Path("index.yaml"): "a: 1\n", Path("schemas/a.json"): b"{}\n"}
    example = generator(tmp_path, files)
    # Given nothing written yet, every file is missing and the check fails
    assert example.main(["--check"]) == 1
    assert "missing: " in capsys.readouterr().err
    # When the generator writes
    assert example.main([]) == 0
    # Then the files hold exactly what was rendered, and the check passes
    assert (tmp_path / "index.yaml").read_text(encoding="utf-8") == "a: 1\n"
    assert (tmp_path / "schemas" / "a.json").read_bytes() == b"{}\n"
    assert example.stale() == []
    assert example.main(["--check"]) == 0
    # And writing again changes nothing
    assert example.write() == []


def test_the_check_names_every_stale_missing_and_left_over_file_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # files are named relative to the working directory
    files: dict[Path, str | bytes] = {
        Path("index.yaml"): "a: 1\n",
        Path("schemas/a.json"): "{}\n",
        Path("schemas/b.json"): "[]\n",
    }
    example = generator(tmp_path, files)
    example.write()
    # Given one file edited, one deleted and one the generator no longer renders
    (tmp_path / "index.yaml").write_text("a: 2\n", encoding="utf-8")
    (tmp_path / "schemas" / "b.json").unlink()
    (tmp_path / "schemas" / "old.json").write_text("{}\n", encoding="utf-8")
    # and a file it does not own
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    capsys.readouterr()
    # Then the check names exactly those three and exits 1
    assert example.stale() == [Path("index.yaml"), Path("schemas/b.json"), Path("schemas/old.json")]
    assert example.main(["--check", "--root", str(tmp_path)]) == 1
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "stale: index.yaml",
        "missing: schemas/b.json",
        "left over: schemas/old.json",
        "regenerate with `python -m example` and commit the result",
    ]
    # And nothing was written by the check
    assert (tmp_path / "index.yaml").read_text(encoding="utf-8") == "a: 2\n"
    # When it writes, the three are put right, the left-over removed, the file it does not own kept
    assert example.write(tmp_path) == [Path("index.yaml"), Path("schemas/b.json"), Path("schemas/old.json")]
    assert not (tmp_path / "schemas" / "old.json").exists()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    assert example.main(["--check"]) == 0


def test_a_source_that_cannot_be_generated_from_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = generator(tmp_path, {Path("index.yaml"): "broken"})
    assert example.main([]) == 2
    assert example.main(["--check"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: the source is broken"] * 2
    assert list(tmp_path.iterdir()) == []
