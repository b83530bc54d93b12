"""The repository explains itself (docs/contributing.md, Citing).

A clone anywhere must hold everything its code, specs and tests cite: no tracked file points at
the background notes or the paper's text that once lay beside the repository, and every
`docs/<file>.md, <Section>` citation names a file of docs/ and a heading that file has, so a
renamed section cannot leave its citations pointing at nothing.

Every file counts, bench/raw/ logs included: a clone elsewhere has no outside documents, so
a log's quoted docstring points at the repo's own docs too.
"""
from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()  # its examples are test data, not citations

# Spelled in pieces so that this file does not itself match the search for such citations.
_OUTSIDE_NAMES = [n + r"\.md" for n in ("METHOD", "DESIGN", "STYLE")] + ["PRIOR" + "_WORK", "shared" + "/paper"]
OUTSIDE = re.compile("|".join(_OUTSIDE_NAMES))

# `docs/x.md`, optionally followed by ", Section" up to the next ( ) [ ] : ; , " ` newline or
# sentence end. A section starts with a capital letter; "docs/x.md, and ..." is no citation.
_END = r"""[()\[\]:;,"`\n]"""
CITATION = re.compile(rf"\bdocs/((?:[\w-]+/)*[\w.-]+?\.md)\b(?:, ([A-Z](?:(?!{_END}).)*?)(?={_END}|\.(?:\s|$)|$))?")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def tracked_text_files() -> list[tuple[str, str]]:
    """(path, text) of every tracked (or new, not ignored) text file; this file left out."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): the tracked files cannot be listed")
    files = []
    for name in out.stdout.decode().split("\0"):
        if not name or name == SELF:
            continue
        try:
            data = (ROOT / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):  # deleted in the work tree, or a submodule
            continue
        if b"\0" in data:
            continue
        try:
            files.append((name, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return files


@lru_cache(maxsize=None)
def headings(doc: str) -> frozenset[str]:
    """The headings of a markdown file under docs/, outside code fences."""
    found, fenced = set(), False
    for line in (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            found.add(m.group(1))
    return frozenset(found)


def citations(files: list[tuple[str, str]]):
    """(where, docs file, section or None) of every docs/ citation in the files."""
    for name, text in files:
        for m in CITATION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            yield f"{name}:{line}", m.group(1), m.group(2)


def test_nothing_cites_a_document_outside_the_repository():
    found = [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
             for name, text in tracked_text_files() for m in OUTSIDE.finditer(text)]
    assert not found, ("these tracked files cite documents that are not in the repository; cite docs/method.md, "
                       "docs/design.md or docs/contributing.md by section, and the paper by its title and tables "
                       "(CITATION.cff):\n  " + "\n  ".join(found))


def test_every_cited_docs_file_exists():
    missing = [f"{where}: docs/{doc}" for where, doc, _ in citations(tracked_text_files())
               if not (ROOT / "docs" / doc).is_file()]
    assert not missing, "these citations name a docs/ file that does not exist:\n  " + "\n  ".join(missing)


def test_every_cited_section_is_a_heading_of_its_docs_file():
    cited = [(where, doc, section) for where, doc, section in citations(tracked_text_files())
             if section is not None and (ROOT / "docs" / doc).is_file()]
    assert cited, "no `docs/<file>.md, <Section>` citation found: the citation pattern no longer matches the code"
    rotten = [(where, doc, section) for where, doc, section in cited if section.strip() not in headings(doc)]
    known = "\n".join(f"headings of docs/{doc}: {', '.join(sorted(headings(doc)))}"
                      for doc in sorted({d for _, d, _ in rotten}))
    assert not rotten, ("these citations name a section their docs file does not have; rename the citation or the "
                        "heading so they agree:\n  " + "\n  ".join(f"{w}: docs/{d}, {s!r}" for w, d, s in rotten)
                        + "\n" + known)


def test_the_citation_pattern_reads_sections_as_the_code_writes_them():
    """The forms the code uses, and where a section ends."""
    text = ("(docs/method.md, Self-distillation). docs/method.md, Saliency and Sim-MixUp: saliency\n"
            "docs/method.md's rule; (fp32; docs/method.md, Training) `docs/design.md, The stage store`\n"
            "docs/method.md, Data, says. see docs/replication/README.md and docs/method.md, and more\n"
            "# docs/method.md, Training\n")
    assert [(doc, section) for _, doc, section in citations([("x", text)])] == [
        ("method.md", "Self-distillation"), ("method.md", "Saliency and Sim-MixUp"), ("method.md", None),
        ("method.md", "Training"), ("design.md", "The stage store"), ("method.md", "Data"),
        ("replication/README.md", None), ("method.md", None), ("method.md", "Training")]
    assert OUTSIDE.search("see " + "METHOD" + ".md, Data") and OUTSIDE.search("../shared" + "/paper/x.txt")
    assert not OUTSIDE.search("EMOCAL_DATA=../shared/data")  # the default data root is not a document
