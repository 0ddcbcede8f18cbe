"""WriteBehind: a walk's database writes on a second thread, in order, all done at close."""

from __future__ import annotations

import threading

from vpod.watch.write_behind import WriteBehind


def test_jobs_run_in_order_on_another_thread_and_close_waits_for_all():
    writer = WriteBehind()
    ran: list[tuple[int, str]] = []
    for n in range(20):
        writer.submit(lambda n=n: ran.append((n, threading.current_thread().name)))
    writer.close()
    assert [n for n, _ in ran] == list(range(20))
    assert {name for _, name in ran} == {"vpod-walk-writer"}
    writer.close()  # closing again (nothing submitted since) is harmless


def test_a_failed_job_is_raised_in_the_walks_thread_and_later_jobs_are_dropped():
    writer = WriteBehind()
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("disk on fire")

    raised = []
    for job in (fail, lambda: ran.append(1)):
        try:
            writer.submit(job)  # raises once the failure is known; until then the job is queued
        except ValueError as exc:
            raised.append(exc)
    try:
        writer.close()
    except ValueError as exc:
        raised.append(exc)
    assert len(raised) == 1 and str(raised[0]) == "disk on fire"  # once, in this thread
    assert ran == []  # nothing after the failure ran
