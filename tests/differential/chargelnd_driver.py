"""Runs charge-lnd 0.3.1's own ``main()`` once per job, inside charge-lnd's own virtualenv.

Started by the differential suite as ``$LNLENS_CHARGE_LND_PYTHON chargelnd_driver.py JOBS.json`` with
``PYTHONPATH=$LNLENS_CHARGE_LND_SRC``: charge-lnd runs as its own program (its module run as ``__main__``,
exactly as ``python -m charge_lnd.charge_lnd``), once per job, in one interpreter so that the suite pays
for starting Python and gRPC once per node state rather than once per config. Nothing of charge-lnd is
imported by lnlens or by the suite itself.

Each job is ``{"tag": ..., "cwd": ..., "argv": [...]}``; its output (stdout and stderr, in order, on one
stream) is framed by ``@@@ start TAG`` and ``@@@ end TAG EXIT`` lines.
"""

import json
import os
import runpy
import sys
import traceback


def main() -> None:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    out = sys.stdout
    for job in jobs:
        # charge-lnd's notes and its report on one stream, in the order it wrote them; reset for every run, as
        # each run's colorama.init() wraps the streams again
        sys.stdout = sys.stderr = out
        print(f"@@@ start {job['tag']}", flush=True)
        os.chdir(job["cwd"])
        sys.argv = ["charge-lnd", *job["argv"]]
        code = 0
        try:
            runpy.run_module("charge_lnd.charge_lnd", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # noqa: BLE001 - a crash of charge-lnd is a result too
            traceback.print_exc(file=sys.stdout)
            code = "crash"
        print(f"@@@ end {job['tag']} {code}", flush=True)


if __name__ == "__main__":
    main()
