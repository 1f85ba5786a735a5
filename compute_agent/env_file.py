"""The agent's configuration file: KEY=VALUE lines, the format systemd's EnvironmentFile= reads.

`python -m compute_agent join` writes it (it holds the host's broker password and secret, so it is
created with mode 0600 and replaced atomically); `python -m compute_agent --config PATH` and the
systemd unit (deploy/kumo-compute-agent.service) read it.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_PATH = Path("/etc/kumo/compute-agent.env")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values stay unquoted, so they must be what systemd and a shell read back unchanged.
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.,:/@%+=?&~*\[\]-]*$")


class EnvFileError(Exception):
    """The file cannot be read, or a value cannot be written without quoting."""


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The KEY=VALUE pairs of the file; blank lines and # comments are skipped, and a value in
    matching single or double quotes loses them (as systemd reads it)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise EnvFileError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def with_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                     env: Mapping[str, str]) -> Mapping[str, str]:
    """`env` with the values of the file `--config` names on the command line laid over it (a
    process's options read their defaults from the result); a file that cannot be read is the
    parser's error, as a bad option is."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    config_path = first.parse_known_args(argv)[0].config
    if not config_path:
        return env
    try:
        return {**env, **read_env_file(config_path)}
    except EnvFileError as exc:
        parser.error(str(exc))


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise EnvFileError unless the file can be written (its directory is made if missing).

    Asked before the one-time join token is spent, so a permission problem costs no token.
    """
    directory = Path(path).parent
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as exc:
        raise EnvFileError(f"cannot write in {directory}: {exc.strerror or exc}") from exc


def write_env_file(
    path: str | os.PathLike[str], values: Mapping[str, str], comments: tuple[str, ...] = ()
) -> None:
    """Replace the file with `values`, readable by its owner only, never half-written."""
    lines = [f"# {comment}" for comment in comments]
    for key, value in values.items():
        if not _KEY.match(key) or not _PLAIN_VALUE.match(value):
            raise EnvFileError(f"{key}: a value that would need quoting")
        lines.append(f"{key}={value}")
    target = Path(path)
    check_writable(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
