"""What dsv32-plugin knows of its host, in one place: the upgrade axis.

* ``touches``: every host object the plugin touches (the target strings: the one file to edit
  when sglang moves one), with why, what dropping it does, and when it can go;
* ``imports``: the host modules each plugin module imports (found by reading the sources);
* ``hooks_doc``: docs/hooks.md, written from both.

No sglang or torch import here.
"""
