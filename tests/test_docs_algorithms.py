"""docs/algorithms.md exists, and every reference to it from the package resolves: the path is
`docs/algorithms.md` and each `#anchor` names one of its headings (GitHub's anchor rules)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "algorithms.md"
TEXT_SUFFIXES = {".py", ".md", ".j2", ".txt", ".toml", ".yaml", ".yml", ".json", ".rst"}
_REFERENCE = re.compile(r"(?P<prefix>[\w./-]*?)algorithms\.md(?:#(?P<anchor>[\w-]+))?")


def github_anchor(heading: str) -> str:
    """GitHub's slug of a heading: lowercase, punctuation dropped (but '-' and '_'), spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def doc_anchors() -> set[str]:
    anchors: set[str] = set()
    in_fence = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (m := re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


def references() -> list[tuple[str, int, str, str | None]]:
    """(file, line, the path as written, the anchor or None) of every algorithms.md reference under tts/."""
    out = []
    for path in sorted((ROOT / "tts").rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES or "__pycache__" in path.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in _REFERENCE.finditer(line):
                written = f"{m.group('prefix')}algorithms.md"
                out.append((str(path.relative_to(ROOT)), n, written, m.group("anchor")))
    return out


def test_doc_exists_with_headings():
    assert DOC.is_file(), "docs/algorithms.md is missing"
    assert len(doc_anchors()) > 5


def test_github_anchor_rules():
    assert github_anchor("Parallel-Distill-Refine (PDR)") == "parallel-distill-refine-pdr"
    assert github_anchor("P(True)") == "ptrue"
    assert github_anchor("Best-of-N, judges and verifiers") == "best-of-n-judges-and-verifiers"


def test_package_references_point_at_docs():
    refs = references()
    assert refs, "expected the package to cite docs/algorithms.md"
    wrong = [f"{f}:{n}: {w}" for f, n, w, _ in refs if not w.endswith("docs/algorithms.md")]
    assert not wrong, "references not to docs/algorithms.md:\n" + "\n".join(wrong)


def test_package_reference_anchors_exist():
    anchors = doc_anchors()
    missing = [f"{f}:{n}: #{a}" for f, n, _, a in references() if a is not None and a not in anchors]
    assert not missing, "anchors with no matching heading in docs/algorithms.md:\n" + "\n".join(missing)


def test_doc_internal_links_resolve():
    text = DOC.read_text(encoding="utf-8")
    anchors = doc_anchors()
    missing = [a for a in re.findall(r"\]\(#([\w-]+)\)", text) if a not in anchors]
    assert not missing, f"internal links with no heading: {missing}"
