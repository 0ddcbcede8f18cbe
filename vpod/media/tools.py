"""Run external tools safely: argument lists, no shell, a timeout, stderr kept.

Every ffprobe, ffmpeg, mkvmerge and mkvpropedit call in vpod goes through
:meth:`ToolRunner.run`, so the rules hold everywhere: no shell ever parses a file name,
a hung tool is killed after its time limit (:mod:`vpod.media.limits`), a tool never
outlives the vpod that started it (:mod:`vpod.media.parent_death`), and the tool's own
message ends up in the error that is logged and recorded.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
from typing import Callable, NamedTuple, Sequence

from vpod.errors import ToolError, ToolMissing, ToolTimeout
from vpod.media.limits import BASE_KEYS, ToolLimits
from vpod.media.parent_death import die_with_parent
from vpod.outcomes import Reason

# Tools print localized, colorized or interactive output otherwise.
_TOOL_ENV = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "AV_LOG_FORCE_NOCOLOR": "1"}
_STDERR_LIMIT = 2000  # characters of a tool's stderr kept in an error message
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_READ_SIZE = 65536


class ToolResult(NamedTuple):
    """A finished tool run: exit status and decoded output (UTF-8, bad bytes replaced)."""

    returncode: int
    stdout: str
    stderr: str


def tool_path(name: str) -> str:
    """Absolute path of ``name`` on ``PATH``.

    Raises:
        ToolMissing: the tool is not installed.
    """
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name)
    return found


class ToolRunner:
    """Runs external tools and can kill every one still running (at shutdown).

    Thread-safe: worker threads share one runner. ``limits`` says how long a run may
    take (a number: that many seconds for every run); a reload replaces it as a whole.
    """

    def __init__(self, limits: ToolLimits | float) -> None:
        self.limits = limits if isinstance(limits, ToolLimits) else ToolLimits.uniform(limits)
        self._lock = threading.Lock()
        self._running: dict[subprocess.Popen[bytes], int] = {}  # process -> the thread that runs it
        self._refused: set[int] = set()  # threads whose work was cancelled: no tool of theirs starts

    def run(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        timeout_seconds: float | None = None,
        timeout_keys: str | None = None,
        ok_codes: tuple[int, ...] = (0,),
        on_output_line: Callable[[str], None] | None = None,
        wrapper: Sequence[str] = (),
        keep_stdout: bool = True,
    ) -> ToolResult:
        """Run ``args[0]`` (looked up on ``PATH``) with the remaining arguments.

        Args:
            args: program name then arguments; paths may hold any bytes (``os.fsencode``).
            timeout_seconds: wall-clock limit (default: ``limits.base_seconds``); the
                tool is killed (SIGKILL) when it passes.
            timeout_keys: the config keys that set ``timeout_seconds``, which the
                timeout's message names (:mod:`vpod.media.limits` ``*_KEYS``; default:
                :data:`~vpod.media.limits.BASE_KEYS` when ``timeout_seconds`` is not
                given, else none named).
            ok_codes: exit statuses that count as success. mkvmerge and mkvpropedit exit
                1 for "finished with warnings" (mkvmerge(1), section "EXIT CODES").
            on_output_line: called in this thread with each line of the tool's stdout
                as it is printed (decoded, without its line break), for progress; the
                whole stdout is still in the result. If it raises, the tool is killed
                and the exception propagates.
            keep_stdout: with ``on_output_line``, ``False`` keeps no stdout in the result
                (``""``): a long listing (one line per packet of a film) is read line by
                line and never held whole. stderr is kept either way.
            wrapper: programs that set a priority and then exec the tool, with their
                arguments (``("nice", "-n", "10", "ionice", "-c", "3")``: nice(1),
                ionice(1)); each is looked up on ``PATH``. The tool keeps its process
                group, so a timeout or shutdown still kills it; errors name the tool.

        Raises:
            ToolMissing: the program is not on ``PATH`` (also when it vanished at run time).
            ToolTimeout: it ran longer than the timeout.
            ToolError: it exited with a status not in ``ok_codes``; the message holds
                the command name, the status and the tool's stderr. Reason ``killed``
                (not permanent) when the thread's work was cancelled (:meth:`cancel_thread`).
        """
        name = os.fspath(args[0])
        self._check_allowed(name)
        limit = self.limits.base_seconds if timeout_seconds is None else timeout_seconds
        argv = [tool_path(name), *(os.fspath(a) for a in args[1:])]
        if wrapper:
            argv = [tool_path(wrapper[0]), *wrapper[1:], *argv]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **_TOOL_ENV},
                # Its own process group: a timeout kills helpers it spawned too, and a
                # Ctrl-C meant for vpod does not cut a tool off mid-write.
                start_new_session=True,
                preexec_fn=die_with_parent(),  # killed when this thread or vpod ends
            )
        except FileNotFoundError:
            raise ToolMissing(name) from None
        with self._lock:
            refused = threading.get_ident() in self._refused
            if not refused:
                self._running[process] = threading.get_ident()
        if refused:  # cancelled between the check above and now (cancel_thread): it goes at once
            _kill_group(process)
            process.communicate()
            raise _cancelled(name)
        try:
            if on_output_line is None:
                stdout, stderr = process.communicate(timeout=limit)
            else:
                stdout, stderr = _communicate_by_line(process, limit, on_output_line, keep_stdout=keep_stdout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            keys = timeout_keys if timeout_keys is not None else (BASE_KEYS if timeout_seconds is None else "")
            raise ToolTimeout(name, limit, keys) from None
        except BaseException:  # Ctrl-C (KeyboardInterrupt) in inspect/plan: the tool goes too
            _kill_group(process)
            process.wait()
            raise
        finally:
            with self._lock:
                self._running.pop(process, None)
        result = ToolResult(
            process.returncode,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )
        if result.returncode not in ok_codes:
            reason = Reason.KILLED if result.returncode < 0 else Reason.TOOL_FAILED
            raise ToolError(
                f"{name} exited with status {result.returncode}: {tool_message(result)}",
                reason=reason,
                permanent=result.returncode >= 0,
            )
        return result

    def pids_of(self, thread_id: int) -> list[int]:
        """Process ids of the tools the thread ``thread_id`` (:func:`threading.get_ident`)
        runs now (what :mod:`vpod.leases` measures)."""
        with self._lock:
            return sorted(p.pid for p, t in self._running.items() if t == thread_id and p.poll() is None)

    def terminate_thread(self, thread_id: int) -> list[subprocess.Popen[bytes]]:
        """Send SIGTERM to the process group of each tool the thread ``thread_id`` runs
        now (a self-fence: :mod:`vpod.leases`); returns those processes, for
        :meth:`reap`. Their :meth:`run` raises :class:`ToolError` (reason ``killed``)."""
        with self._lock:
            running = [p for p, t in self._running.items() if t == thread_id and p.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        return running

    def cancel_thread(self, thread_id: int) -> list[subprocess.Popen[bytes]]:
        """Cancel the work of the thread ``thread_id``: SIGTERM its tools as
        :meth:`terminate_thread` does, and refuse every tool it starts from now on until
        :meth:`allow_thread` (its :meth:`run` raises :class:`ToolError`, reason ``killed``):
        a cancelled transcode may be between two tools (its probe done, its encoder not
        started yet), and the next one must not run. Returns the processes, for :meth:`reap`."""
        with self._lock:
            self._refused.add(thread_id)
        return self.terminate_thread(thread_id)

    def allow_thread(self, thread_id: int) -> None:
        """The thread ``thread_id`` may run tools again (its cancelled work has ended)."""
        with self._lock:
            self._refused.discard(thread_id)

    def _check_allowed(self, name: str) -> None:
        """Raises :class:`ToolError` (``killed``) when this thread's work was cancelled."""
        with self._lock:
            refused = threading.get_ident() in self._refused
        if refused:
            raise _cancelled(name)

    @staticmethod
    def reap(processes: Sequence[subprocess.Popen[bytes]], *, grace_seconds: float) -> None:
        """SIGKILL the process group of each of ``processes`` still running
        ``grace_seconds`` after :meth:`terminate_thread` signalled them."""
        deadline = time.monotonic() + grace_seconds
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if process.poll() is None:
                _kill_group(process)

    def kill_all(self) -> int:
        """Kill every tool still running; returns how many were killed."""
        with self._lock:
            running = list(self._running)
        for process in running:
            if process.poll() is None:
                _kill_group(process)
        return len(running)


def _communicate_by_line(
    process: subprocess.Popen[bytes], timeout_seconds: float, on_line: Callable[[str], None], *, keep_stdout: bool = True
) -> tuple[bytes, bytes]:
    """:meth:`Popen.communicate` that also hands each stdout line to ``on_line`` as it
    arrives. Both pipes are drained together (one ``selectors`` loop, no thread, no
    polling), so a tool that fills its stderr pipe never blocks; the deadline counts
    from the call, as ``communicate(timeout=...)`` does. Without ``keep_stdout`` the
    stdout returned is empty: each chunk is dropped once its lines are handed over.

    Raises:
        subprocess.TimeoutExpired: the tool ran past ``timeout_seconds`` (the caller kills it).
        Exception: whatever ``on_line`` raised; the tool is killed and reaped first.
    """
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout_seconds
    out: list[bytes] = []
    err: list[bytes] = []
    pending = b""  # the start of a stdout line not yet ended
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, out)
            selector.register(process.stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise subprocess.TimeoutExpired(process.args, timeout_seconds)
                for key, _ in selector.select(remaining):
                    data = os.read(key.fd, _READ_SIZE)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    if key.data is not out or keep_stdout:
                        key.data.append(data)
                    if key.fileobj is process.stdout:
                        *lines, pending = _LINE_BREAK.split(pending + data)
                        for line in lines:
                            on_line(line.decode("utf-8", "replace"))
        if pending:
            on_line(pending.decode("utf-8", "replace"))
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise  # the caller kills the tool and reaps it with communicate()
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    process.stdout.close()
    process.stderr.close()
    return b"".join(out), b"".join(err)


def _cancelled(name: str) -> ToolError:
    return ToolError(f"{name} was not run: its work was cancelled (vpod is stopping)", reason=Reason.KILLED, permanent=False)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


_FFMPEG_PROGRESS = re.compile(
    r"^(frame|fps|stream_\d+_\d+_q|bitrate|total_size|out_time|out_time_us|out_time_ms|dup_frames|drop_frames|speed"
    r"|progress)="
)
"""A line of ``ffmpeg -progress`` output (ffmpeg(1), ``-progress url``: ``key=value`` lines)."""


def tool_message(result: ToolResult) -> str:
    """The useful part of a tool's complaint: stderr, else the tail of stdout.

    mkvmerge and mkvpropedit print their errors on stdout, prefixed ``Error:``; under
    ``--gui-mode`` (mkvmerge(1)) as ``#GUI#error …`` / ``#GUI#warning …``, which are
    shown as ``Error: …`` / ``Warning: …`` too. Without such lines, the tail of stdout
    stands in, less its progress lines (``#GUI#progress N%`` / ``Progress: N%``).
    """
    text = result.stderr.strip()
    if not text:
        gui = {"#GUI#error ": "Error: ", "#GUI#warning ": "Warning: "}
        lines = [
            next((gui[tag] + line[len(tag):] for tag in gui if line.startswith(tag)), line)
            for line in result.stdout.splitlines()
        ]
        complaints = [line for line in lines if line.startswith(("Error", "Warning"))]
        # Progress lines (``#GUI#progress 45%``, ``Progress: 45%``, ffmpeg's ``-progress``
        # ``key=value`` blocks) say nothing about the failure.
        rest = [
            line for line in lines
            if not line.startswith(("#GUI#progress", "Progress:")) and not _FFMPEG_PROGRESS.match(line)
        ]
        text = "\n".join(complaints) or "\n".join(rest).strip()[-_STDERR_LIMIT:]
    return text[-_STDERR_LIMIT:] or "(no message)"
