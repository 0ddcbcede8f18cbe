"""sd_notify address and watchdog parsing (sd_notify(3), sd_watchdog_enabled(3))."""

from vpod.notify import SystemdNotifier, socket_address, watchdog_interval


def test_socket_address_forms():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify") == b"\0/org/freedesktop/systemd1/notify"
    assert socket_address("") is None
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None
    assert socket_address("relative/path") is None


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval({}, 42) is None


def test_notifier_without_socket_is_a_no_op():
    notifier = SystemdNotifier(None, 5.0)
    assert not notifier.enabled
    assert notifier.watchdog_seconds is None
    assert notifier.ready("x") is False


def test_send_to_a_missing_socket_returns_false(tmp_path):
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens"))
    assert notifier.status("hello") is False
