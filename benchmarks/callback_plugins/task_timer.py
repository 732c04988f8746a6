"""Print the wall time of every task at the end of a play run (for the converge benchmark)."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Record how long each task took
description:
  - Writes a JSON list of [task name, seconds] to the file named by PYSERVE_TASK_TIMES.
requirements:
  - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    """Times tasks from their start to the start of the next one."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._times: list[list] = []
        self._current: tuple[str, float] | None = None

    def _close(self) -> None:
        if self._current:
            name, started = self._current
            self._times.append([name, time.monotonic() - started])
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._close()
        self._current = (task.get_name(), time.monotonic())

    def v2_playbook_on_stats(self, stats) -> None:
        self._close()
        path = os.environ.get("PYSERVE_TASK_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self._times, handle)
