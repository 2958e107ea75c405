"""kill -9 of worker processes while 500 reports flow: three times a pool process (the worker's
main process replaces it), then three times the worker's main process (a supervisor starts a
new worker, as systemd would). Every report ends with exactly one case link; no case and no
event is written twice; recovery needs no person, and its time is measured."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy.orm import Session, sessionmaker

from tests.faults.conftest import (
    Load,
    Stack,
    assert_each_report_once,
    new_reporter_keys,
    wait_until_routed,
)

REPORTS = 500
KILLS = 3
# Between two kills: long enough for the worker to take up tasks again.
KILL_EVERY_SECONDS = 3.0
# Four reporters posting as fast as the web server answers, with a breath between reports.
POST_PAUSE_SECONDS = 0.1
# A correctness bound, not a target: a worker killed must not stall its reports for long.
RECOVERY_BOUND_SECONDS = 60.0


def pool_processes(worker_pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == worker_pid:
            children.append(int(entry))
    return children


def next_success_after(stack: Stack, offset: int, restarted: bool = False) -> float:
    """Seconds until the worker log shows a task done after ``offset`` (by a new worker, once
    it is ready, when ``restarted``)."""
    started = time.monotonic()
    while True:
        log = stack.log("worker")[offset:]
        if restarted:
            log = log.partition("ready.")[2]
        if "succeeded in" in log:
            return time.monotonic() - started
        assert time.monotonic() - started < RECOVERY_BOUND_SECONDS, "no task done since the kill"
        time.sleep(0.1)


def test_killing_worker_processes_loses_and_doubles_nothing(
    stack: Stack, pg_sessions: sessionmaker[Session]
) -> None:
    keys = new_reporter_keys(pg_sessions, 4)
    reporter_ids = [reporter_id for reporter_id, _ in keys]
    recoveries: list[str] = []

    # The stack's supervisor starts a new worker when its main process is gone.
    with Load(stack.base, keys, pause=POST_PAUSE_SECONDS, limit=REPORTS) as load:
        for number in range(KILLS):
            time.sleep(KILL_EVERY_SECONDS)
            assert stack.worker is not None
            child = pool_processes(stack.worker.pid)[0]
            offset = len(stack.log("worker"))
            os.kill(child, signal.SIGKILL)
            seconds = next_success_after(stack, offset)
            recoveries.append(f"pool process kill {number + 1}: tasks done {seconds:.1f} s on")
        for number in range(KILLS):
            time.sleep(KILL_EVERY_SECONDS)
            assert stack.worker is not None
            offset = len(stack.log("worker"))
            os.kill(stack.worker.pid, signal.SIGKILL)
            seconds = next_success_after(stack, offset, restarted=True)
            recoveries.append(f"main process kill {number + 1}: tasks done {seconds:.1f} s on")
        load.wait(120)
    last_kill_done = time.monotonic()
    recovery = wait_until_routed(
        pg_sessions, reporter_ids, describe=lambda: stack.log("worker")[-3000:]
    )

    print("\n" + "\n".join(recoveries))
    print(
        f"{len(load.answers)} reports; every one routed {recovery:.1f} s after the last was "
        f"sent ({time.monotonic() - last_kill_done:.1f} s)"
    )
    assert {a.status for a in load.answers} == {202}
    assert len(load.answers) >= REPORTS
    assert assert_each_report_once(pg_sessions, reporter_ids) == len(load.answers)
