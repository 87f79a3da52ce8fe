"""Write constraints.txt: the installed version of every package ``pip install -e ".[all,test]"`` pulls in.

Run it in an environment where the test suite passes: ``python tools/freeze_constraints.py > constraints.txt``.
"""

import re
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement

env = default_environment()
seen: dict[str, tuple[str, str]] = {}


def visit(name: str, extras: tuple[str, ...] = ()) -> None:
    key = re.sub(r"[-_.]+", "-", name).lower()
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    seen.setdefault(key, (dist.metadata["Name"], dist.version))
    for r in dist.requires or []:
        req = Requirement(r)
        if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in (*extras, "")):
            continue
        rkey = re.sub(r"[-_.]+", "-", req.name).lower()
        if rkey not in seen or req.extras:
            visit(req.name, tuple(req.extras))


visit("stream-am", ("all", "test"))
print("# Versions the test suite passed with (Python 3.11, Linux): pip install -c constraints.txt ...")
print("# Written by tools/freeze_constraints.py from an environment where the tests pass.")
for key, (name, version) in sorted(seen.items()):
    if key != "stream-am":
        print(f"{name}=={version.split('+')[0]}")  # torch 2.13.0+cpu: any build of that release
