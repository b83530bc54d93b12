"""The README is a landing page whose copied blocks are their sources: a block of
`<!-- generated:NAME -->` that differs from the file docs/replication/fill_readme.py copies it from
fails here, as does a README that grows past a landing page, carries dated measurements, links to a
file that is not in the repository, or names test commands other than those CI runs."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _fill_readme():
    spec = importlib.util.spec_from_file_location("fill_readme", ROOT / "docs/replication/fill_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fill = _fill_readme()


def test_the_readmes_generated_blocks_are_their_sources():
    text = README.read_text()
    assert fill.fill_blocks(text) == text, "README's generated blocks drifted; run: python docs/replication/fill_readme.py --readme"
    for name, source in fill.BLOCKS.items():
        body = re.search(rf"<!-- generated:{name} -->\n(.*?)<!-- /generated -->", text, re.S).group(1)
        assert body.strip() and body.strip() == (ROOT / source).read_text().strip()


def test_a_drifted_copy_is_caught_and_refilled(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs/replication").mkdir(parents=True)
    source = tmp_path / fill.BLOCKS["claims"]
    source.write_text("| # | claim |\n|---|---|\n| 1 | new |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated:claims -->\n| # | claim |\n|---|---|\n| 1 | old |\n<!-- /generated -->\nend\n")
    monkeypatch.setattr(fill, "ROOT", tmp_path)
    assert fill.main(["--check"]) == 1 and "--readme" in capsys.readouterr().err
    assert fill.fill_readme(tmp_path) is True
    assert readme.read_text() == "intro\n<!-- generated:claims -->\n| # | claim |\n|---|---|\n| 1 | new |\n<!-- /generated -->\nend\n"
    assert fill.main(["--check"]) == 0 and fill.fill_readme(tmp_path) is False


def test_a_block_without_a_source_or_a_source_without_a_block_is_an_error():
    with pytest.raises(ValueError, match="generated:nope has no source"):
        fill.fill_blocks("<!-- generated:claims -->\n<!-- /generated -->\n<!-- generated:nope -->\nx\n<!-- /generated -->\n")
    with pytest.raises(ValueError, match=r"no block for \['claims'\]"):
        fill.fill_blocks("no blocks at all\n")


def test_the_readme_is_a_landing_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 150, "the README is a landing page; move detail into docs/guide.md"
    dated = re.findall(r"\b20\d\d-\d\d-\d\d\b|\b\d+ (?:passed|skipped|failed)\b|\b\d+(?:\.\d+)? ?(?:s|min)\b(?!\w)", text)
    assert not dated, f"dated measurements or pass counts belong in bench/RESULTS.md: {dated}"
    from tests.test_repo import OUTSIDE  # the names of documents outside the repo, spelled so no grep finds them

    assert not OUTSIDE.search(text)


def test_every_relative_link_in_the_readme_and_guide_is_a_file_here():
    for doc in (README, ROOT / "docs/guide.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+://", target):
                assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to {target}, which is not in the repo"


def test_the_readme_runs_the_tests_as_ci_does():
    text = README.read_text()
    full = ". .venv/bin/activate && EMOCAL_DATA=../shared/data python -m pytest -q\n"
    fast = '. .venv/bin/activate && EMOCAL_DATA=../shared/data python -m pytest -q -m "not slow"\n'
    assert full in text and fast in text
    ci = (ROOT / ".ci/run").read_text().strip().splitlines()
    assert ci[-1] == "python -m pytest -q", "CI runs the README's full-suite command"


def test_the_quickstart_is_one_command_from_a_fresh_clone():
    section = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert "\n" not in command
    steps = [s.strip() for s in command.split("&&")]
    assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"]
    assert steps.index("pip install torch==2.13.0") < steps.index('pip install -e ".[test]"')
    spec = re.search(r"python -m orchestrator\.sweep (\S+)$", steps[-1]).group(1)
    assert (ROOT / spec).is_file() and spec == "specs/quickstart.yaml"
