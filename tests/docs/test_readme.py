"""The README as a newcomer meets it: its quick start runs as written, it stays short, its links resolve, and the
docs site it points to builds with ``mkdocs build --strict``."""
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/docs/ -> the repo
README = os.path.join(ROOT, "README.md")
#: the section whose ```bash blocks are run line by line
QUICK_START = "## Quick start"
#: the issue asks for a front door of about 200 lines; this is the hard limit
MAX_README_LINES = 220
#: seconds one quick-start command may take: the demo model on one 64x64 image takes ~10 s on 2 loaded cores
COMMAND_TIMEOUT = 300
#: a markdown link or image target: [text](target) / ![alt](target)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: what the docs build needs beyond mkdocs itself (the `docs` extra)
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def readme_text() -> str:
    with open(README, encoding="utf-8") as f:
        return f.read()


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line) up to the next ``## `` heading."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


def bash_commands(text: str) -> list:
    """The commands of every fenced ```bash block in ``text``: one per line, backslash continuations joined,
    blank lines and comment lines dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    return commands


def test_the_quick_start_section_has_commands_to_run():
    commands = bash_commands(section(readme_text(), QUICK_START))
    assert commands, f"README's {QUICK_START!r} section has no ```bash block"
    assert all(c.split()[0] == "tfxattr" for c in commands), commands  # nothing that installs or downloads


def tfxattr_command(bin_dir) -> None:
    """A ``tfxattr`` executable in ``bin_dir`` that runs this checkout's package, as pip's console script
    (``tfxattr.cli:main``) would, whatever copy of tfxattr is installed."""
    path = os.path.join(bin_dir, "tfxattr")
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nimport sys\nfrom tfxattr.cli import main\nsys.exit(main())\n")
    os.chmod(path, 0o755)


@pytest.mark.parametrize("command", bash_commands(section(readme_text(), QUICK_START)))
def test_the_quick_start_runs_as_written(command, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tfxattr_command(bin_dir)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=ROOT,
               TFXATTR_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)
    assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    words = shlex.split(command)
    if "--out" in words:
        out = work / words[words.index("--out") + 1]
        assert out.is_file() and out.stat().st_size > 0, f"{command!r} wrote no {out.name}"
    else:
        assert done.stdout.strip(), f"{command!r} printed nothing"


def test_the_readme_is_a_front_door_not_a_manual():
    lines = readme_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/ (limit {MAX_README_LINES})"


def test_every_relative_link_in_the_readme_resolves():
    targets = [t for t in LINK.findall(readme_text()) if not re.match(r"[a-z]+:|#", t)]
    assert targets, "README.md links nothing"
    missing = [t for t in targets if not os.path.exists(os.path.join(ROOT, t.split("#")[0]))]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def docs_missing() -> list:
    return [name for name in DOCS_PACKAGES if importlib.util.find_spec(name.split(".")[0]) is None
            or (name.count(".") and importlib.util.find_spec(name) is None)]


@pytest.mark.skipif(bool(docs_missing()), reason="the docs extra is not installed (missing: "
                    f"{', '.join(docs_missing())}): pip install -e \".[docs]\"")
def test_the_docs_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "figures/readme_methods.png" in home and (site / "figures" / "readme_methods.png").is_file()
    api = (site / "reference" / "tfxattr" / "index.html").read_text(encoding="utf-8")
    assert 'id="tfxattr.explain.explain"' in api, "the API reference did not render explain's docstring"


def test_the_module_map_in_the_docs_follows_the_tree():
    """docs/modules.md lists every module of the package (scripts/module_map.py writes it)."""
    spec = importlib.util.spec_from_file_location("module_map", os.path.join(ROOT, "scripts", "module_map.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with open(script.PAGE, encoding="utf-8") as f:
        committed = f.read()
    assert committed == script.module_map(), "docs/modules.md is stale: run python scripts/module_map.py"
