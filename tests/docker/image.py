"""What the app image holds, read from the files that decide it (no Docker engine needed).

docker/Dockerfile builds the image's virtualenv with ``uv sync --no-editable`` from the build
context (the repository less ``.dockerignore``): the project goes in as the wheel that
``pyproject.toml`` describes, its third-party packages come from ``uv.lock``. These helpers
read those files: the Dockerfile's stages and instructions, the context, the wheel's package
list, the lock's dependency closure and the imports of the code.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "uv.lock"


# --------------------------------------------------------------------------- pyproject, lock


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def wheel_packages() -> list[str]:
    """The packages of the project's wheel (``[tool.hatch.build.targets.wheel] packages``)."""
    packages: list[str] = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def wheel_extra_paths() -> dict[str, str]:
    """Folders put into the wheel beside the packages: source → path in the wheel."""
    wheel = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    extra: dict[str, str] = wheel.get("force-include", {})
    return extra


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_closure(*, groups: tuple[str, ...] = ()) -> set[str]:
    """Distributions ``uv sync --no-default-groups`` installs (plus ``groups``), from uv.lock.

    The project's own dependencies with their extras, transitively, on this platform and
    Python (the image's: Linux, CPython): a dependency whose marker is false here is left out.
    """
    packages = {p["name"]: p for p in tomllib.loads(LOCK.read_text())["package"]}
    project = packages["tributary"]

    def wanted(deps: list[dict[str, Any]]) -> list[tuple[str, tuple[str, ...]]]:
        return [
            (d["name"], tuple(d.get("extra", ())))
            for d in deps
            if "marker" not in d or Marker(d["marker"]).evaluate()
        ]

    todo = wanted(project.get("dependencies", []))
    for group in groups:
        todo += wanted(project["dev-dependencies"][group])
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while todo:
        name, extras = todo.pop()
        names.add(name)
        package = packages[name]
        for part in ("", *extras):
            if (name, part) in seen:
                continue
            seen.add((name, part))
            deps = (
                package.get("dependencies", [])
                if not part
                else package.get("optional-dependencies", {}).get(part, [])
            )
            todo += wanted(deps)
    return names


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def dockerfile_stages(text: str | None = None) -> dict[str, Stage]:
    """The Dockerfile's stages by name, each with its instructions (continuations joined)."""
    text = DOCKERFILE.read_text() if text is None else text
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    logical = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        logical = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
            current = stages[name] = Stage(name=name, base=words[0])
        elif current is not None:
            current.instructions.append(Instruction(keyword, arguments.strip(), start))
    return stages


def run_commands(stage: Stage) -> list[list[str]]:
    """Each RUN of the stage as shell words, its ``--mount``/``--network`` flags removed."""
    commands = []
    for run in stage.all("RUN"):
        words = shlex.split(run.arguments)
        while words and words[0].startswith("--"):
            words.pop(0)
        commands.append(words)
    return commands


def uv_syncs(stage: Stage) -> list[list[str]]:
    """The ``uv sync`` command lines of a stage (one per RUN that runs one)."""
    found = []
    for words in run_commands(stage):
        for i in range(len(words) - 1):
            if words[i] == "uv" and words[i + 1] == "sync":
                end = next((j for j in range(i, len(words)) if words[j] in ("&&", ";")), None)
                found.append(words[i : end if end is not None else len(words)])
    return found


# --------------------------------------------------------------------------- build context


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over context-relative paths (``**``, ``*``, ``?``)."""
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        elif glob[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(glob[i])
            i += 1
    return re.compile(out + "$")


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``(exception, pattern)`` for each line of .dockerignore, in order."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        glob = line.lstrip("!").strip().strip("/")
        patterns.append((exception, _pattern(glob)))
    return patterns


def ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` out of the context (a folder's match covers its files)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for exception, pattern in patterns:
        if any(pattern.match(prefix) for prefix in prefixes):
            result = not exception
    return result


def copy_context(target: Path) -> list[str]:
    """Copy the build context (the repository less .dockerignore) to ``target``; list it."""
    patterns = dockerignore_patterns()
    copied = []
    for folder, dirs, files in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else f"{base}/"
        dirs[:] = sorted(d for d in dirs if not ignored(prefix + d, patterns))
        for name in sorted(files):
            relative = prefix + name
            source = ROOT / relative
            if ignored(relative, patterns) or source.is_symlink():
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            copied.append(relative)
    return copied


# --------------------------------------------------------------------------- imports


def _type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _optional_import(node: ast.AST) -> bool:
    """``try: import x`` with ``except ImportError``: the code runs without the package."""
    return isinstance(node, ast.Try) and any(
        isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
        for h in node.handlers
    )


def runtime_imports(path: Path) -> set[str]:
    """Top-level module names a file needs when it runs.

    Left out: ``if TYPE_CHECKING:`` blocks, and imports guarded by ``except ImportError``
    (optional packages, such as the local stack's JDK wheel, which the image does without).
    """
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            assert isinstance(node, ast.If)
            for statement in node.orelse:
                visit(statement)
            return
        if _optional_import(node):
            assert isinstance(node, ast.Try)
            rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
            for part in rest:
                visit(part)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return names


def first_party_modules() -> set[str]:
    """Importable names at the repository's root: its packages and top-level modules."""
    names = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    names |= {p.stem for p in ROOT.glob("*.py")}
    return names


def stdlib(name: str) -> bool:
    return name in sys.stdlib_module_names or name == "__future__"
