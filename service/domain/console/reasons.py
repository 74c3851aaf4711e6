"""The console's error reasons."""

from __future__ import annotations

from service.base.errors import Reason


class ConsoleReason(Reason):
    # The session, task, execution, channel or rule is not in the caller's workspace.
    CONSOLE_ITEM_NOT_FOUND = "CONSOLE_ITEM_NOT_FOUND"
