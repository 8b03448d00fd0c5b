"""Pure decisions, no I/O: functions of (resources, now) -> decisions."""
