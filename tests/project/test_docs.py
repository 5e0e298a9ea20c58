"""The documentation says only what is true.

Every ``auglens`` command shown in README.md, docs/*.md, bench/README.md and the example configs' headers
is parsed by the real command-line parser (and its config, when it names a shipped one, validated with
the command's overrides); every subcommand's ``--help`` runs; every script and benchmark named exists;
every ``section.key`` config key named in the prose exists; every TOML block is a valid config; every
name of the Python API the docs use exists; and every file the README's results table lists is written by
a real (tiny) study.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from auglens import cli
from auglens import config as study_config
from auglens._tomllib import tomllib
from auglens.distortion import config as distortion_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass(frozen=True)
class Command:
    source: str
    text: str

    def __str__(self) -> str:  # the pytest id
        return f"{self.source}: {self.text}"


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _shell_lines(body: str) -> list[str]:
    """Lines of a shell block, continuations joined, prompts and comments stripped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = []
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ").strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def documented_commands(program: str) -> list[Command]:
    """Every shell line that starts with ``program`` in the docs' code blocks and the examples' headers."""
    found = []
    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text()):
            if lang in ("", "bash", "sh", "shell", "console"):
                found += [Command(_relative(doc), line) for line in _shell_lines(body)
                          if line.split()[0] == program]
    for example in EXAMPLES:
        for line in example.read_text().splitlines():
            if not line.startswith("#"):
                break
            text = line.lstrip("#").strip()
            if text.split()[:1] == [program]:
                found.append(Command(_relative(example), text))
    return found


def _is_synopsis(argv: list[str]) -> bool:
    """A usage line with placeholders (``[key=value ...]``, ``CONFIG``) rather than a runnable command."""
    return any(token.startswith("[") or "..." in token or "…" in token or re.fullmatch(r"[A-Z][A-Z0-9_.]+", token)
               for token in argv)


AUGLENS_COMMANDS = documented_commands("auglens")


def test_the_docs_show_commands():
    # A broken extractor would make every test below pass vacuously.
    assert len(AUGLENS_COMMANDS) >= 10
    assert {shlex.split(c.text, comments=True)[1] for c in AUGLENS_COMMANDS} >= {"run", "validate", "report", "compare", "ls"}


@pytest.mark.parametrize("command", AUGLENS_COMMANDS, ids=str)
def test_documented_command_parses_and_its_config_validates(command: Command):
    argv = shlex.split(command.text, comments=True)[1:]
    subcommands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert argv[0] in subcommands, f"no subcommand {argv[0]!r}; there are {sorted(subcommands)}"
    if _is_synopsis(argv):
        return
    try:
        args = cli.parse_arguments(argv)
    except SystemExit as exit_:
        pytest.fail(f"the parser refused {command.text!r} (exit {exit_.code})")
    config_path = ROOT / getattr(args, "config", "") if getattr(args, "config", None) else None
    if config_path is None or not config_path.is_file():
        return  # a user's own file, shown as an example
    overrides = list(getattr(args, "overrides", []) or [])
    loader = distortion_config.load if argv[0] == "distortion" else study_config.load
    loader(config_path, overrides)  # raises ConfigError listing every problem


@pytest.mark.parametrize("subcommand", sorted({shlex.split(c.text, comments=True)[1] for c in AUGLENS_COMMANDS}))
def test_documented_subcommand_help_runs(subcommand: str, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([subcommand, "--help"])
    assert exit_.value.code == 0
    assert "usage: auglens" in capsys.readouterr().out


def _named_files() -> set[str]:
    """Repository files named in the docs' shell blocks: ``scripts/...``, ``bench/...``, ``examples/...``."""
    names = set()
    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text()):
            if lang in ("", "bash", "sh", "shell", "console"):
                names.update(re.findall(r"(?<![\w/])((?:scripts|bench|examples)/[\w./-]+\.(?:sh|py|toml))", body))
        names.update(re.findall(r"`((?:scripts|bench|examples)/[\w./-]+\.(?:sh|py|toml))`", doc.read_text()))
    return names


def test_every_named_script_benchmark_and_example_exists():
    names = _named_files()
    assert any(n.startswith("scripts/") for n in names)
    missing = sorted(n for n in names if not (ROOT / n).is_file())
    assert not missing, f"named in the docs but not in the repository: {missing}"


BENCH_COMMANDS = [c for c in documented_commands("python") if shlex.split(c.text, comments=True)[1].startswith("bench/")]


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted({shlex.split(c.text, comments=True)[1] for c in BENCH_COMMANDS}))
def test_documented_benchmark_accepts_its_documented_options(script: str):
    """Each benchmark's --help runs, and every option the docs pass it is one it declares."""
    result = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for command in BENCH_COMMANDS:
        argv = shlex.split(command.text, comments=True)
        if argv[1] != script:
            continue
        for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
            assert option in result.stdout, f"{command}: {script} has no option {option}"


def _config_keys() -> tuple[set[str], set[str]]:
    """Every dotted key of the study and distortion configs, and the sections they live in."""
    keys = {name for name, _, _ in study_config.describe_fields()}
    keys |= {name for name, _, _ in study_config.describe_fields(distortion_config.DistortionConfig)}
    sections = {k.split(".")[0] for k in keys if "." in k}
    return keys, sections


def _inline_config_keys() -> list[tuple[str, str]]:
    """``section.key`` (optionally ``= value``) in the docs' inline code, for sections that exist."""
    keys, sections = _config_keys()
    found = []
    for doc in [*DOCS, *EXAMPLES]:
        prose = FENCE.sub("", doc.read_text())
        for span in INLINE_CODE.findall(prose):
            match = re.fullmatch(r"([a-z_]+(?:\.[a-z_0-9]+)+)(\s*=.*)?", span.strip())
            if match and match[1].split(".")[0] in sections:
                found.append((_relative(doc), match[1]))
    return found


def test_every_config_key_named_in_the_docs_exists():
    keys, _ = _config_keys()
    named = _inline_config_keys()
    assert len(named) >= 10
    # Keys under a free-form table (e.g. model.params.width) exist when their table does.
    unknown = sorted({(doc, key) for doc, key in named
                      if key not in keys and not any(key.startswith(k + ".") for k in keys)})
    assert not unknown, f"config keys named in the docs that no config has: {unknown}"


def _blocks(language: str) -> list[tuple[str, str]]:
    """(doc, body) of every fenced block of ``language`` in the docs."""
    return [(_relative(doc), body) for doc in DOCS for lang, body in FENCE.findall(doc.read_text())
            if lang == language]


@pytest.mark.parametrize("source, body", _blocks("toml"), ids=lambda v: v if v.endswith(".md") else "")
def test_toml_blocks_in_the_docs_are_valid_configs(source: str, body: str):
    data = tomllib.loads(body)
    study_config.from_dict(data, source=source)


@pytest.mark.parametrize("source, body", _blocks("python"), ids=lambda v: v if v.endswith(".md") else "")
def test_python_api_names_in_the_docs_exist(source: str, body: str):
    """Every ``module.name`` used from an ``import auglens`` or ``from auglens import module`` exists (the code
    itself is not run here)."""
    import importlib

    tree = ast.parse(body)
    modules, imported = {}, 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "auglens" or alias.name.startswith("auglens."):
                    imported += 1
                    modules[alias.asname or alias.name] = importlib.import_module(alias.name)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("auglens"):
            for alias in node.names:
                imported += 1
                try:
                    modules[alias.asname or alias.name] = importlib.import_module(f"{node.module}.{alias.name}")
                except ModuleNotFoundError:
                    parent = importlib.import_module(node.module)
                    assert hasattr(parent, alias.name), f"{source}: {node.module} has no {alias.name}"
    assert imported, f"{source}: a Python block that imports nothing from auglens"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            assert hasattr(modules[node.value.id], node.attr), f"{source}: {node.value.id}.{node.attr} does not exist"


def _readme_results_files() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Results folder", 1)[1].split("\n#", 1)[0]
    files = []
    for row in re.findall(r"^\| (.+?) \|", section, re.M):
        files += re.findall(r"`([^`]+)`", row)
    return files


@pytest.mark.slow
def test_every_results_file_the_readme_lists_is_written(tiny_config_path, tmp_path):
    from auglens.report import build_report
    from auglens.study import run_study

    listed = _readme_results_files()
    assert {"performance.csv", "cam_metrics.parquet", "report/index.html"} <= set(listed)
    out = tmp_path / "study"
    run_study(study_config.load(tiny_config_path), out, progress=False)
    build_report(out)
    missing = [name for name in listed if not (out / name.rstrip("/")).exists()]
    assert not missing, f"the README lists files a study does not write: {missing}"


def test_the_api_page_is_generated_from_the_docstrings():
    from auglens.api_reference import api_markdown

    assert (ROOT / "docs" / "api.md").read_text() == api_markdown(), \
        "regenerate: python -m auglens.api_reference > docs/api.md"


@pytest.mark.slow
def test_the_python_examples_of_the_api_page_and_readme_run(tiny_config_path, tmp_path, monkeypatch):
    """The examples run as written, in order, with the shipped config they load replaced by the tiny study's
    (the quick study takes minutes)."""
    import json

    blocks = [body for name in ("docs/api.md", "README.md") for _, body in [
        (doc, body) for doc, body in _blocks("python") if doc == name] if "auglens.open_study" in body
        or "auglens.compare_study" in body]
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.print", lambda *args, **kwargs: None)
    for body in blocks:
        code = body.replace('"examples/fashion-mnist-quick.toml"', repr(str(tiny_config_path)))
        exec(compile(code, "example", "exec"), {})
    assert (tmp_path / "results" / "nb" / "report" / "index.html").is_file()
    manifest = json.loads((tmp_path / "results" / "nb-pairs" / "manifest.json").read_text())
    assert manifest["models"] == ["none-s1", "affine-s1", "affine-s2", "cutmix-s1", "cutmix-s2"]
