"""Every command of exported/README.md, run as typed on a real bundle.

The README's code blocks run in a scratch folder laid out like a checkout after
`make run` (`exported/default`, `.venv`, `.venv-inference`, `examples/node`), with a
small two-level VAE's bundle as `exported/two_level`.
Three kinds of line are not run, and are checked instead: installs (what
`make test`'s own set-up runs: `make node-deps`, the inference wheel's fixture),
`docker run` lines (no Docker here: their mounts are checked for the layout
each server loads), and the starts of keras-vae-serve and of the real Triton
server (examples/triton/serve.py), which run in the background on free ports
that the `curl` lines are pointed at (8080 and 8501: keras-vae-serve; 8000:
Triton). A `curl` line followed by a `# {...}` comment must answer that JSON
(exactly, or its keys where the comment elides values with `...`).
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.servers import running_server, running_triton

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "exported" / "README.md"
INSTALLS = re.compile(
    r"^(python3 -m venv |\.venv-inference/bin/pip install |\S+=\S+ npm ci|make triton-deps)"
)
DOCKER_SERVERS = {"tensorflow/serving", "nvcr.io/nvidia/tritonserver"}


def code_blocks(text):
    """[(language, [logical lines with their comment lines])] of the ```sh/```python blocks."""
    blocks = []
    for language, body in re.findall(r"```(sh|python)\n(.*?)```", text, re.S):
        if language == "python":
            blocks.append((language, body.splitlines()))
            continue
        commands = []
        for line in body.replace("\\\n", " ").splitlines():
            if commands and commands[-1].count("'") % 2:  # inside a quoted string
                commands[-1] += "\n" + line
            elif line.strip():
                commands.append(line)
        blocks.append((language, commands))
    return blocks


def scratch_checkout(tmp_path, run_dir, bundle, two_level, serving_python):
    """A folder laid out like a checkout after `make run`, and a two-level bundle exported
    beside the default: the README's commands write into its copies of the bundles (the
    export adds a version)."""
    root = tmp_path / "checkout"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "default").symlink_to(run_dir)
    shutil.copytree(bundle, root / "exported" / "default")
    shutil.copytree(two_level, root / "exported" / "two_level")
    (root / "pipelines").symlink_to(ROOT / "pipelines")
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (root / ".venv-inference").symlink_to(Path(serving_python).parent.parent)
    (root / ".venv-triton").symlink_to(ROOT / ".venv-triton")
    launcher = Path("examples") / "triton" / "serve.py"
    (root / launcher).parent.mkdir(parents=True)
    (root / launcher).symlink_to(ROOT / launcher)
    node = root / "examples" / "node"
    node.mkdir(parents=True)
    for name in ("decode.mjs", "package.json", "package-lock.json"):
        (node / name).write_bytes((ROOT / "examples" / "node" / name).read_bytes())
    (node / "node_modules").symlink_to(ROOT / "examples" / "node" / "node_modules")
    return root


def check_docker_line(line, root):
    words = shlex.split(line.replace('"$PWD', f'"{root}'))
    image = next(w for w in words if w.split(":")[0] in DOCKER_SERVERS).split(":")[0]
    mounts = [words[i + 1].split(":") for i, w in enumerate(words) if w == "-v"]
    assert mounts, line
    for source, target in mounts:
        model = Path(source)
        versions = [p for p in model.iterdir() if p.name.isdigit()]
        assert versions and Path(target).name == model.name, line
        for version in versions:
            if image == "tensorflow/serving":
                assert (version / "saved_model.pb").is_file(), version
            else:
                assert (version / "model.onnx").is_file(), version
        if image == "tensorflow/serving":
            assert f"MODEL_NAME={model.name}" in words
        else:
            assert (model / "config.pbtxt").is_file()
            assert "--model-repository=/models" in words and target.startswith("/models/")
    return image


def check_answer(output, comment, command):
    expected = comment.removeprefix("#").strip().split("   ")[0]
    if "..." in expected:
        for key in re.findall(r'"(\w+)":', expected):
            assert f'"{key}":' in output, (command, output[:300])
    else:
        assert json.loads(output) == json.loads(expected), (command, output[:300])


def test_every_command_of_the_bundle_readme_runs(
    real_run, real_bundle, two_level_bundle, serving_venv, tmp_path
):
    run_dir, _ = real_run
    bundle, manifest = real_bundle
    assert manifest["model"]["latent_dim"] == 32  # the README's examples are the default model's
    python = serving_venv
    root = scratch_checkout(tmp_path, run_dir, bundle, two_level_bundle[0], python)
    blocks = code_blocks(README.read_text())
    commands = [line for language, lines in blocks if language == "sh" for line in lines]
    (serve,) = [line for line in commands if "keras-vae-serve" in line]
    executable, served, port_flag, port = shlex.split(serve)
    assert (executable, port_flag, port) == (
        ".venv-inference/bin/keras-vae-serve",
        "--port",
        "8080",
    )
    (triton,) = [line for line in commands if "examples/triton/serve.py" in line]
    python_path, launcher, triton_bundle, *ports = shlex.split(triton)
    assert (launcher, ports) == (
        "examples/triton/serve.py",
        ["--http-port", "8000", "--grpc-port", "8001"],
    )
    skipped = {"docker": set(), "install": []}
    ran = 0
    with (
        running_server(root / executable, root / served, tmp_path / "server.log") as url,
        running_triton(root / python_path, root / triton_bundle, tmp_path / "triton.log") as (
            triton_url,
            _,
        ),
    ):
        addresses = {
            "8080": url.removeprefix("http://"),
            "8501": url.removeprefix("http://"),
            "8000": triton_url.removeprefix("http://"),
        }
        for number, (language, lines) in enumerate(blocks):
            if language == "python":
                result = subprocess.run(
                    [sys.executable, "-"], input="\n".join(lines), cwd=root,
                    capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                assert result.returncode == 0, ("\n".join(lines), result.stderr[-2000:])
                ran += 1
                continue
            ran += run_shell_block(
                lines, root, addresses, (serve, triton), skipped, tmp_path / f"block-{number}"
            )
    assert skipped["docker"] == DOCKER_SERVERS
    assert sorted(skipped["install"]) == [
        '.venv-inference/bin/pip install "./inference[serve]"',
        "ONNXRUNTIME_NODE_INSTALL=skip npm ci",
        "make triton-deps",
        "python3 -m venv .venv-inference",
    ]
    # The installs are the ones `make test` runs (make node-deps, inference-deps, triton-deps).
    makefile = (ROOT / "Makefile").read_text()
    assert "ONNXRUNTIME_NODE_INSTALL=skip npm ci" in makefile
    assert 'pip install --quiet "./inference[serve]"' in makefile
    (test_target,) = [line for line in makefile.splitlines() if line.startswith("test:")]
    assert "triton-deps" in test_target.split()
    assert ran >= 15
    assert (root / "examples" / "node" / "grid.png").stat().st_size > 0
    # The export command added version 2 beside version 1.
    assert (
        json.loads((root / "exported" / "default" / "manifest.json").read_text())["latest_version"]
        == 2
    )


def run_shell_block(lines, root, addresses, servers, skipped, outputs):
    """Runs a shell block command by command in one shell; returns how many ran."""
    outputs.mkdir()
    script, checks = ["cd " + shlex.quote(str(root))], []
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        if line in servers:
            continue  # already running
        if line.startswith("docker run"):
            skipped["docker"].add(check_docker_line(line, root))
            continue
        if INSTALLS.match(line):
            skipped["install"].append(line.split("#")[0].strip())
            continue
        command = re.sub(r"localhost:(8080|8501|8000)", lambda port: addresses[port.group(1)], line)
        output = outputs / str(len(checks))
        saved = shlex.quote(str(output))
        script.append(f"{{ {command}\n}} > {saved} 2>&1 || {{ cat {saved} >&2; exit 1; }}")
        following = lines[index + 1] if index + 1 < len(lines) else ""
        checks.append((output, following if following.startswith("# {") else None, line))
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(script)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (lines, result.stderr[-3000:])
    for output, comment, line in checks:
        if comment:
            check_answer(output.read_text(), comment, line)
    return len(checks)
