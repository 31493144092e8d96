"""Life cycle of the real servers a transport talks to: start, wait, stop, clean up.

One ``ServerProcess`` per server: it runs in its own process group on a free
loopback port, logs to ``<workdir>/<name>.log``, is ready when its port accepts a
connection (bounded wait), and is stopped by pid -- SIGTERM, then SIGKILL -- also
on Ctrl-C or an error (``atexit`` and the context manager both stop it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from iotbench.transports.base import TransportError

__all__ = ["ServerProcess", "free_port", "pids_under", "port_open", "require_binary", "wait_until"]

LOOPBACK = "127.0.0.1"
_running: set[ServerProcess] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def pids_under(folder: Path) -> list[int]:
    """The pids of the running servers whose folder is ``folder`` or inside it (a cell's servers)."""
    folder = Path(folder).resolve()
    return [p.pid for p in list(_running) if p.pid is not None and p.workdir.is_relative_to(folder)]


def require_binary(name: str, install: str) -> str:
    """The full path of ``name`` or a TransportError that says how to install it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise TransportError(f"{name} is not installed: {install}")
    return path


class ServerProcess:
    """A server started by iotbench.

    >>> with ServerProcess("mosquitto", ["mosquitto", "-c", conf], workdir=d, port=p):  # doctest: +SKIP
    ...     ...  # the broker accepts connections on 127.0.0.1:p here
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        workdir: Path,
        port: int,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 30.0,
        stop_argv: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = Path(workdir).resolve()  # servers run in their own folder: never relative
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.ready = ready or (lambda: port_open(port))
        self.ready_timeout = ready_timeout
        self.stop_argv = list(stop_argv) if stop_argv else None
        self.log_path = self.workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> ServerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"{self.name} could not start ({exc}); see {self.log_path}") from None
        finally:
            log.close()
        _running.add(self)
        proc = self._proc
        if not wait_until(lambda: proc.poll() is not None or self.ready(), self.ready_timeout):
            self.stop()
            raise TransportError(f"{self.name} was not ready within {self.ready_timeout:.0f} s; log: {self.tail()}")
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self.stop()
            raise TransportError(f"{self.name} exited with code {code} at start; log: {self.tail()}")
        return self

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is None:
            return
        if self.stop_argv and proc.poll() is None:
            try:
                subprocess.run(self.stop_argv, env=self.env, timeout=timeout, capture_output=True)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the whole group: wrappers start children
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        # children that outlived the leader (same group) go too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop(timeout=5.0)
