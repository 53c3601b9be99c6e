"""``StartupRefusal``: a configuration the plugin will not serve, said in one line.

Raised with a message that names the flag and the way out: mostly while the
launcher resolves its arguments (before any rank starts), also by the KV pool
and the draft backends in the scheduler, and by ``dsv32-plugin launch-command``.
The rules are ``dsv32_plugin.policy``'s. ``hooks/refusals.py`` makes the
launcher print such an error as that one line instead of a traceback; inside
Python (``sglang.Engine``) it is an ordinary ValueError.
"""


PREFIX = "dsv32-plugin: "


class StartupRefusal(ValueError):
    """A flag combination dsv32-plugin refuses; ``str(exc)`` is the whole explanation."""

    def __init__(self, message: str):
        self.reason = message.removeprefix(PREFIX)  # without the program's name, for tools that print their own
        super().__init__(PREFIX + self.reason)
