"""The docs cannot drift from the code: README.md and docs/*.md (and tts/swe/README.md) are checked here.

- Every ```python block runs as written, in a scratch directory that has `examples/`:
  `tts.make_backend` returns a `ScriptedBackend`, and a block that uses an OpenAI client runs
  against a real `tts.TTSServer` on loopback. A block that cannot run standalone is preceded by
  `<!-- not-run: reason -->`; it is still compiled and its imports are run.
- Every `tts ...` command in a ```bash block is parsed by the real command-line parser, so a flag
  cannot drift. A block preceded by `<!-- run: loopback -->` runs for real: its `tts` commands, in
  order, against the loopback server (`python -m tts.testing serve`), with `--model` and the
  endpoint substituted; other commands in it (pip, venv) are not run.
- Every flag in a ```text synopsis of the command line exists on its subcommand; every
  `python benchmarks/X.py --flag` names a script that declares that flag.
- A block whose first line is a comment naming a file under examples/ is that file.
- Every relative link resolves (the file, and an #anchor to one of its headings); every repo path
  and every `tts.module.name` written in inline code exists.
- README.md is at most 250 lines, keeps the two set-up commands CI runs, links every docs page, and
  its layout map names every module at the package root and every package folder.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import tts
from tts.testing import ScriptedBackend

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
FILES = [README, *PAGES, ROOT / "tts" / "swe" / "README.md"]
FILES = [f for f in FILES if f.is_file()]
MAX_README_LINES = 250
MAX_NOT_RUN = 3
LANGUAGES = {"python", "bash", "yaml", "json", "toml", "text"}
SETUP_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[local]' && .venv/bin/tts run examples/arithmetic.jsonl "
    "--model local --strategy self-consistency --n 8",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[local,swe,dev]' && .venv/bin/python -m pytest -q",
)
TTS_PROGRAMS = ("tts", ".venv/bin/tts")
_MARKER = re.compile(r"<!--\s*(not-run|run)\s*:\s*(.*?)\s*-->")
_FENCE = re.compile(r"^(`{3,})([\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: tuple[str, str] | None  # ("not-run", reason) or ("run", what), from the line before

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2), i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.search(before)
        out.append(Block(path, start + 1, lang, "\n".join(lines[start + 1:j]) + "\n",
                         (marker.group(1), marker.group(2)) if marker else None))
        i = j + 1
    return out


BLOCKS = [b for f in FILES for b in blocks_of(f)]
PYTHON = [b for b in BLOCKS if b.lang == "python"]
BASH = [b for b in BLOCKS if b.lang == "bash"]


def prose(path: Path) -> str:
    """The text outside fenced blocks."""
    text, keep, fence = [], True, None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _FENCE.match(line)
        if m and (fence is None or line.rstrip() == fence):
            fence = m.group(1) if fence is None else None
            keep = fence is None
            continue
        if keep:
            text.append(line)
    return "\n".join(text)


def github_anchor(heading: str) -> str:
    """GitHub's slug of a heading: links reduced to their text, lowercase, punctuation dropped (but
    '-' and '_'), spaces to '-'."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in prose(path).splitlines():
        if m := re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line):
            slug = github_anchor(m.group(1))
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return out


def links_of(path: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", prose(path))  # not inside inline code
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def resolve_link(path: Path, target: str) -> tuple[Path, str | None] | None:
    """(the file, the anchor) a relative link names, or None for an external one."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return None
    file, _, anchor = target.partition("#")
    return ((path.parent / file).resolve() if file else path), (anchor or None)


# ---------------------------------------------------------------- Python blocks

def _scratch(tmp_path: Path) -> Path:
    """A scratch working directory in which `examples/` is the repository's."""
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return tmp_path


def test_the_docs_have_python_blocks():
    assert len(PYTHON) >= 8
    assert sum(b.file == README for b in PYTHON) >= 2


def test_every_block_names_its_language():
    bad = [f"{b.where}: ```{b.lang}" for b in BLOCKS if b.lang not in LANGUAGES]
    assert not bad, f"fenced blocks must name one of {sorted(LANGUAGES)} (so this test checks them):\n" + \
        "\n".join(bad)


def test_not_run_blocks_give_a_reason_and_are_few():
    marked = [b for b in BLOCKS if b.marker and b.marker[0] == "not-run"]
    assert all(b.lang == "python" for b in marked), "not-run marks a python block"
    assert all(len(b.marker[1]) >= 10 for b in marked), [b.where for b in marked if len(b.marker[1]) < 10]
    assert len(marked) <= MAX_NOT_RUN, f"{len(marked)} python blocks do not run: {[b.where for b in marked]}"


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_block_runs(block, monkeypatch, tmp_path):
    code = block.code
    monkeypatch.chdir(_scratch(tmp_path))
    monkeypatch.setenv("TTS_CACHE_DIR", str(tmp_path / "cache"))
    if block.marker and block.marker[0] == "not-run":
        tree = compile(code, block.where, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        imports = ast.Module([n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], [])
        exec(compile(imports, block.where, "exec"), {"__name__": "__docs__"})
        return
    made: list[ScriptedBackend] = []

    def fake_make_backend(*args, **kwargs):
        made.append(ScriptedBackend(["Adding them: 8. ANSWER: 8"]))
        return made[-1]

    monkeypatch.setattr(tts, "make_backend", fake_make_backend)
    namespace = {"tts": tts, "__name__": "__docs__"}
    if "OpenAI(" in code:
        pytest.importorskip("openai")
        pytest.importorskip("aiohttp")
        asyncio.run(_with_server(code, namespace, block.where))
        return
    exec(compile(code, block.where, "exec"), namespace)
    if "make_backend(" in code and ("asyncio.run(" in code or "_sync(" in code):
        assert made and all(b.calls for b in made), "the block's strategy made no model call"


async def _with_server(code: str, namespace: dict, where: str) -> None:
    """A client block, pointed at a real `TTSServer` over the scripted backend."""
    strategy = tts.SelfConsistency(n=2)
    async with tts.TTSServer(strategy, ScriptedBackend(["391"]), model="gpt-4o-mini", port=0) as server:
        assert "http://127.0.0.1:8000/v1" in code, "a client block names the default address"
        code = code.replace("http://127.0.0.1:8000/v1", server.url)
        await asyncio.to_thread(exec, compile(code, where, "exec"), namespace)


# ---------------------------------------------------------------- shell blocks

def shell_commands(code: str) -> list[list[str]]:
    """Each simple command of a shell block as its words: continuations joined, comments dropped,
    split at `&&`, `||`, `;` and `|`, leading VAR=value assignments dropped."""
    out: list[list[str]] = []
    for line in code.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: list[str] = []
        for word in [*lexer, ";"]:
            if word in (";", "&&", "||", "|", "&"):
                while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
                    words.pop(0)
                if words:
                    out.append(words)
                words = []
            else:
                words.append(word)
    return out


def tts_commands(block: Block) -> list[list[str]]:
    """The `tts` commands of a block, without the program name."""
    return [words[1:] for words in shell_commands(block.code) if words[0] in TTS_PROGRAMS]


COMMANDS = [(b, argv) for b in BASH for argv in tts_commands(b)]
COMMAND_IDS = [f"{b.where} #{sum(c is b for c, _ in COMMANDS[:i]) + 1} tts {a[0]}" for i, (b, a) in enumerate(COMMANDS)]


def test_the_docs_have_tts_commands():
    assert len(COMMANDS) >= 25
    assert {argv[0] for _, argv in COMMANDS if argv[0] != "--plugin"} >= {"run", "compare", "serve", "show",
                                                                          "plan", "tasks", "local", "swe"}


def _parse(argv: list[str]):
    from tts.cli.main import build_parser, split_plugins
    from tts.registry import load_plugin

    plugins, rest = split_plugins(argv)
    for plugin in plugins:
        load_plugin(str(ROOT / plugin) if (ROOT / plugin).is_file() else plugin)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(rest)
    except SystemExit as exc:
        raise AssertionError(f"`tts {shlex.join(argv)}` does not parse (exit {exc.code}): "
                             f"{err.getvalue().strip()}") from None


@pytest.mark.parametrize("argv", [a for _, a in COMMANDS], ids=COMMAND_IDS)
def test_tts_command_parses(argv):
    args = _parse(argv)
    assert getattr(args, "handler", None) is not None, f"`tts {shlex.join(argv)}` names no command"


def test_benchmark_commands_use_real_flags():
    """`python benchmarks/X.py --flag`: the script exists and declares each flag (read from its source)."""
    found, bad = 0, []
    for block in BASH:
        for words in shell_commands(block.code):
            if words[0] in ("python", "python3", ".venv/bin/python") and words[1].startswith("benchmarks/"):
                found += 1
                script = ROOT / words[1]
                if not script.is_file():
                    bad.append(f"{block.where}: {words[1]}: no such script")
                    continue
                source = script.read_text()
                flags = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
                bad += [f"{block.where}: {words[1]} {f}" for f in flags if f'"{f}"' not in source]
    assert found >= 8
    assert not bad, "benchmark scripts or flags that do not exist:\n" + "\n".join(bad)


RUN_BLOCKS = [b for b in BASH if b.marker and b.marker[0] == "run"]


def test_some_blocks_run_for_real():
    assert all(b.marker[1] == "loopback" for b in RUN_BLOCKS), "run blocks say `<!-- run: loopback -->`"
    assert len(RUN_BLOCKS) >= 5 and any(b.file == README for b in RUN_BLOCKS)
    assert all(tts_commands(b) for b in RUN_BLOCKS)


@pytest.fixture(scope="module")
def loopback():
    proc = subprocess.Popen([sys.executable, "-m", "tts.testing", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, line
    yield line.strip().split()[-1]
    proc.kill()
    proc.wait()


def on_loopback(argv: list[str], url: str) -> list[str]:
    """The command with its model replaced by the loopback server's."""
    if "--model" not in argv:
        return argv
    out: list[str] = []
    it = iter(argv)
    for word in it:
        if word in ("--backend", "--api-base", "--api-key"):
            next(it, None)
        elif word == "--model":
            next(it, None)
            out += ["--model", "sim"]
        else:
            out.append(word)
    return [*out, "--backend", "openai", "--api-base", url]


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.where for b in RUN_BLOCKS])
def test_run_block_runs_on_loopback(block, loopback, tmp_path):
    cwd = _scratch(tmp_path)
    env = {**os.environ, "TTS_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "160"}
    for argv in tts_commands(block):
        cmd = [sys.executable, "-m", "tts.cli.main", *on_loopback(argv, loopback)]
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"`tts {shlex.join(cmd[3:])}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"


# ---------------------------------------------------------------- synopsis, example files

def _subparsers(parser) -> dict:
    import argparse

    return {name: p for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            for name, p in a.choices.items()}


def _options(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


SYNOPSES = [b for b in BLOCKS if b.lang == "text" and re.search(r"^tts ", b.code, flags=re.M)]


def synopsis_entries(code: str) -> list[str]:
    """Each `tts ...` line with its indented continuation lines."""
    entries: list[str] = []
    for line in code.splitlines():
        if line.startswith("tts "):
            entries.append(line)
        elif entries and line.startswith(" "):
            entries[-1] += "\n" + line
    return entries


def test_synopsis_flags_exist():
    from tts.cli.main import build_parser

    assert SYNOPSES, "expected the command line's synopsis in a ```text block"
    top = build_parser()
    bad, seen = [], 0
    for block in SYNOPSES:
        for entry in synopsis_entries(block.code):
            words = entry.split()[1:]
            parsers = [top]
            for word in words:
                names = word.split("|")
                subs = [_subparsers(p) for p in parsers]
                if not all(all(n in s for n in names) for s in subs):
                    break
                parsers = [s[n] for s in subs for n in names]
            allowed = set.intersection(*(_options(p) for p in parsers)) | _options(top)
            for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", entry):
                seen += 1
                if flag not in allowed:
                    bad.append(f"{block.where}: {entry.split()[:2]} {flag}")
    assert seen > 40
    assert not bad, "flags in the synopsis that the command does not have:\n" + "\n".join(bad)


EXAMPLE_COPIES = [b for b in BLOCKS if b.lang in ("python", "yaml")
                  and re.match(r"^#.*?\b(examples/[\w/.-]+\.(?:py|ya?ml|json))\b", b.code)]


@pytest.mark.parametrize("block", EXAMPLE_COPIES, ids=[b.where for b in EXAMPLE_COPIES])
def test_block_is_the_example_file_it_names(block):
    name = re.findall(r"examples/[\w/.-]+\.(?:py|ya?ml|json)", block.code.splitlines()[0])[-1]
    file = ROOT / name
    assert file.is_file(), f"{block.where} names {name}, which does not exist"
    if block.lang == "yaml":
        assert yaml.safe_load(block.code) == yaml.safe_load(file.read_text()), f"{block.where} differs from {name}"
    else:  # the code after the comment line naming the file
        code = "\n".join(block.code.strip().splitlines()[1:]).strip()
        assert code in file.read_text(), f"{block.where} is not the text of {name}"


def test_toml_blocks_parse():
    import tomllib

    blocks = [b for b in BLOCKS if b.lang == "toml"]
    assert blocks
    for block in blocks:
        tomllib.loads("\n".join(line for line in block.code.splitlines() if not line.startswith("#")))


def test_yaml_blocks_parse():
    for block in (b for b in BLOCKS if b.lang == "yaml"):
        yaml.safe_load(block.code)


# ---------------------------------------------------------------- links, paths and names

@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_relative_links_resolve(path):
    bad = []
    for target in links_of(path):
        resolved = resolve_link(path, target)
        if resolved is None:
            continue
        file, anchor = resolved
        if not file.exists():
            bad.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors_of(file):
            bad.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not bad, f"{path.relative_to(ROOT)}:\n" + "\n".join(bad)


_REPO_PATH = re.compile(r"(?<![\w./~-])((?:tts|examples|benchmarks|prompts|docs|tests)/[\w./*-]*[\w*])")


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_repo_paths_exist(path):
    """Paths named in inline code, and in bash and text blocks: a moved module shows up here."""
    spans = re.findall(r"`([^`\n]+)`", prose(path))
    spans += [b.code for b in BLOCKS if b.file == path and b.lang in ("bash", "text")]
    missing = sorted({p for s in spans for p in _REPO_PATH.findall(s) if not list(ROOT.glob(p))})
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def _is_submodule(name: str) -> bool:
    return (ROOT / "tts" / name).is_dir() or (ROOT / "tts" / f"{name}.py").is_file()


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_inline_tts_names_resolve(path):
    """`tts.x.y` in inline code: a module path, or a name of the package (`tts.Name`, `tts.f(...)`).
    Lower-case `tts.field` that is no module is a field of `tts serve`'s reply, not checked."""
    bad = []
    for span in re.findall(r"`([^`\n]+)`", prose(path)):
        for m in re.finditer(r"(?<![\w.])tts((?:\.[A-Za-z_]\w*)+)(\()?", span):
            first = m.group(1).split(".")[1]
            if _is_submodule(first) or first[0].isupper() or m.group(2) or hasattr(tts, first):
                if not _resolves("tts" + m.group(1)):
                    bad.append("tts" + m.group(1))
    assert not bad, f"{path.relative_to(ROOT)} names what does not exist: {sorted(set(bad))}"


# ---------------------------------------------------------------- the README

def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; move detail into docs/"


def test_readme_links_every_docs_page():
    linked = {file for t in links_of(README) if (r := resolve_link(README, t)) for file in [r[0]]}
    missing = [p.name for p in PAGES if p.resolve() not in linked]
    assert not missing, f"README.md does not link docs pages: {missing}"


def test_readme_layout_names_every_root_module_and_folder():
    """The layout map is the package as it is: every module at the root (the core) and every folder."""
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 1)]
    named = {p.rstrip("/") for row in re.findall(r"^\| (.*?) \|", layout, flags=re.M)
             for p in re.findall(r"`(tts/[\w./]+)`", row)}
    package = ROOT / "tts"
    wanted = {f"tts/{p.name}" for p in package.glob("*.py") if p.name != "__init__.py"}
    wanted |= {f"tts/{p.name}" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert not wanted - named, f"the README's layout map misses {sorted(wanted - named)}"


def test_readme_keeps_the_set_up_commands():
    readme_bash = [b.code.strip() for b in BASH if b.file == README]
    for command in SETUP_COMMANDS:
        assert command in readme_bash, f"the README's set-up command changed: {command}"
    ci = ROOT / ".ci" / "run"
    if ci.is_file():
        assert SETUP_COMMANDS[1] in ci.read_text(), "CI no longer runs the README's test command"
