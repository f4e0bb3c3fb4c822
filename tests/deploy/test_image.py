"""The Dockerfile, kept honest without a Docker engine.

Every path it copies exists and passes .dockerignore; every command it names is
in the CLI; its base images are pinned; and a wheel built from exactly the files
it copies holds what the services need at run time (the `pip install .` of the
build stage, minus the dependencies).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata

import pytest

from prodigy_users.stack import SERVABLE, SERVICES
from prodigy_users.stack.cli import SUBCOMMANDS, main, parser

from . import policy
from .manifests import OVERLAYS, REPO, containers, render

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a continuation line ends the Dockerfile"
    return out


def _args() -> dict[str, str]:
    args = {}
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
    return args


def _expand(text: str) -> str:
    args = _args()
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def _copies() -> list[tuple[list[str], str]]:
    """Sources and destination of each COPY from the build context (not --from)."""
    out = []
    for word, rest in instructions():
        if word != "COPY":
            continue
        parts = shlex.split(rest)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        out.append((parts[:-1], parts[-1]))
    return out


def _ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex."""
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + "$")


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative, '/'-separated) out of the build context.

    The last matching pattern wins; a pattern that matches a directory matches
    everything under it.
    """
    parts = path.strip("/").split("/")
    result = False
    for raw in _ignore_patterns():
        negate = raw.startswith("!")
        regex = _pattern(raw.lstrip("!").strip("/"))
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def test_base_images_are_pinned() -> None:
    stages = [_expand(rest).split()[0] for word, rest in instructions() if word == "FROM"]
    assert len(stages) == 2, "a build stage and a run stage"
    for image in stages:
        assert policy.image_reference_problem(image) is None, image
        assert "slim" in image, f"{image}: the run stage wants a slim base"


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    copies = _copies()
    assert copies, "the Dockerfile copies nothing from the context"
    for sources, _ in copies:
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
            assert not ignored(source), f"COPY {source}: .dockerignore leaves it out"
    # What the build installs from: the package sources and their metadata.
    copied = {s.rstrip("/") for sources, _ in copies for s in sources}
    assert copied == {"pyproject.toml", "README.md", "contracts", "services"}


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".prodigy-data/keys/signing.pem",
        "tests/conftest.py",
        "deploy/README.md",
        "build/lib",
        "services/identity/__pycache__/app.cpython-311.pyc",
    ],
)
def test_local_state_stays_out_of_the_build_context(path: str) -> None:
    assert ignored(path)


def test_the_entry_point_is_the_console_script() -> None:
    entry = [json.loads(rest) for word, rest in instructions() if word == "ENTRYPOINT"]
    assert entry == [["prodigy-users"]]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["prodigy-users"] == "prodigy_users.stack.cli:main"
    (installed,) = [
        ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "prodigy-users"
    ]
    assert installed.load() is main


def test_every_command_the_dockerfile_names_is_in_the_cli() -> None:
    (cmd,) = [json.loads(rest) for word, rest in instructions() if word == "CMD"]
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(cmd)
    assert exit_.value.code == 0  # --help
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    for match in re.finditer(r"prodigy-users\s+(\S+)", runs):
        assert match.group(1) in {*SUBCOMMANDS, "--help"}, match.group(0)
    header = DOCKERFILE.read_text()
    for command, service in re.findall(r"prodigy-users (serve|migrate) (\S+)", header):
        assert command in SUBCOMMANDS
        assert set(service.split("|")) == set(SERVABLE if command == "serve" else SERVICES)


def test_the_image_user_is_the_one_the_manifests_run_as() -> None:
    (user,) = [rest for word, rest in instructions() if word == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) > 0 and int(gid) > 0
    for overlay in OVERLAYS:
        for obj in render(overlay):
            if obj["kind"] == "Deployment":
                pod = obj["spec"]["template"]["spec"]
                assert pod["securityContext"]["runAsUser"] == int(uid)
                assert pod["securityContext"]["runAsGroup"] == int(gid)
                for _, c in containers(pod):
                    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built from exactly what the Dockerfile copies (after .dockerignore)."""
    context = tmp_path_factory.mktemp("context")
    for sources, destination in _copies():
        for source in sources:
            src = REPO / source
            target = context / destination if destination not in ("./", ".") else context
            if src.is_dir():
                for path in src.rglob("*"):
                    rel = path.relative_to(REPO).as_posix()
                    if path.is_file() and not ignored(rel):
                        out = target / path.relative_to(src)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
    out = tmp_path_factory.mktemp("wheel")
    # Offline: the build backend comes from the test environment, nothing is fetched.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(context),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("prodigy_users-*.whl")
    return zipfile.ZipFile(built)


def test_the_installed_distribution_has_every_service_and_its_migrations(
    wheel: zipfile.ZipFile,
) -> None:
    names = set(wheel.namelist())
    wanted = {
        "prodigy_users/stack/cli.py",
        "prodigy_users/stack/deploy_gen.py",
        "prodigy_users/runtime/service.py",
        "prodigy_users/contracts/topics.py",
    }
    for service in SERVICES:
        wanted |= {
            f"prodigy_users/{service}/app.py",
            f"prodigy_users/{service}/settings.py",
            f"prodigy_users/{service}/migrations/env.py",
        }
        repo_versions = REPO / "services" / service / "migrations" / "versions"
        wanted |= {
            f"prodigy_users/{service}/migrations/versions/{p.name}"
            for p in repo_versions.glob("*.py")
        }
    wanted |= {
        f"prodigy_users/contracts/schemas/{p.name}"
        for p in (REPO / "contracts" / "schemas").glob("*.json")
    }
    # The console: its code, every template and static file (package data).
    console = REPO / "services" / "console"
    wanted |= {
        f"prodigy_users/console/{p.relative_to(console).as_posix()}"
        for p in console.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".html", ".css", ".js", ".md", ".LICENSE")
        and "__pycache__" not in p.parts
    }
    assert "prodigy_users/console/static/vendor/htmx-2.0.11.min.js" in wanted
    assert wanted - names == set()
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "prodigy-users = prodigy_users.stack.cli:main" in text
    # Nothing of the repository's own baggage.
    assert not [n for n in names if n.startswith(("tests/", "deploy/", "services/"))]
