"""The reliability suite: each scenario prints what it did and found; non-zero exit if any failed.

    python -m reliability.run [scenario ...]

Bounded in time (each scenario has its own limits), loopback only. A scenario
whose endpoints are not in this tree is reported SKIPPED, which also makes
the run exit non-zero: nothing is claimed that was not exercised.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

from reliability.common import Report, ScenarioSkipped

SCENARIOS = {
    "oversell": "reliability.scenario_oversell",
    "webhooks": "reliability.scenario_webhooks",
    "worker_kill": "reliability.scenario_worker_kill",
    "redis_down": "reliability.scenario_redis_down",
    "postgres_drop": "reliability.scenario_postgres_drop",
    "schemathesis": "reliability.scenario_schemathesis",
    "multi_node": "reliability.scenario_multi_node",
}


def main(argv: list[str]) -> int:
    chosen = argv or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    outcomes = {}
    for name in chosen:
        print(f"\n=== {name}: {importlib.import_module(SCENARIOS[name]).__doc__.splitlines()[0]}", flush=True)
        report = Report(name)
        started = time.monotonic()
        try:
            importlib.import_module(SCENARIOS[name]).run(report)
            outcome = "FAILED" if report.failures else "passed"
        except ScenarioSkipped as exc:
            outcome = "SKIPPED"
            report.found(str(exc))
        except Exception as exc:  # a crash is a failure, reported with its traceback
            traceback.print_exc()
            report.failures.append(f"crashed: {type(exc).__name__}: {exc}")
            outcome = "FAILED"
        outcomes[name] = {"outcome": outcome, "seconds": round(time.monotonic() - started, 1),
                          "failures": report.failures, **report.facts}
        print(f"=== {name}: {outcome} in {outcomes[name]['seconds']}s", flush=True)
    print("\nreliability summary")
    for name, outcome in outcomes.items():
        failures = "; ".join(outcome["failures"])
        print(f"  {name:15} {outcome['outcome']:8} {outcome['seconds']:>6}s  {failures}")
    print(json.dumps({"suite": "reliability", "scenarios": outcomes}, default=str))
    return 0 if all(o["outcome"] == "passed" for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
