"""``simulate`` on a ScaledJob against a running scaler (fake backend, scripted per poll): the
calls KEDA's ScaledJob loop makes, the jobs created per poll as KEDA's formulas
(:mod:`tests.keda_jobs`) give them, the table, ``--json`` and ``--plot``, and the options."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from scaler.tools.simulate import command
from tests.keda_jobs import Jobs, Strategy, jobs_to_create
from tests.scaled_objects import manifest
from tests.test_simulate_live import SteppedClock, parse, write_manifest

#: per fake resource, the value from each simulated time on
SCRIPTS: dict[str, list[tuple[float, float]]] = {
    "jobs": [(0, 0.0), (30, 12.0), (60, 40.0), (120, 9.0), (180, 0.0)],
    "other": [(0, 0.0), (60, 3.0), (90, 30.0), (150, 5.0)],
}


class PerResource(dict[str, float | BaseException]):
    """``FakeBackend.values`` following the simulated time, one script per resource."""

    def __init__(self, clock: SteppedClock, scripts: dict[str, list[tuple[float, float]]]):
        super().__init__()
        self.clock = clock
        self.scripts = scripts

    def get(self, key, default=None):
        current = default
        for since, value in self.scripts.get(key, []):
            if self.clock.scheduled >= since:
                current = value
        return current


def fake(name: str, target: str) -> dict[str, Any]:
    metadata = {"scalerAddress": "keda-queue-scaler.keda.svc:9090", "backend": "fake"}
    return {"type": "external", "metadata": {**metadata, "name": name, "target": target}}


def scaled_job(tmp_path: Path, *triggers: dict[str, Any], **spec: Any) -> Path:
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "resize", "namespace": "media"},
        "spec": {"jobTargetRef": {"template": {}}, **spec, "triggers": list(triggers)},
    }
    path = tmp_path / "job.yaml"
    path.write_text(manifest(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("strategy", "calculation"),
    [
        (Strategy(), "max"),
        (Strategy("custom", 2, 0.25), "sum"),
        (Strategy("accurate"), "avg"),
        (Strategy("eager"), "min"),
    ],
    ids=lambda v: v.name if isinstance(v, Strategy) else v,
)
async def test_simulate_a_scaled_job_against_a_running_scaler(
    serve, fake_backend, tmp_path, strategy, calculation
) -> None:
    running = await serve(cache_ttl=0.0)
    clock = SteppedClock(300)
    fake_backend.values = PerResource(clock, SCRIPTS)
    scaling: dict[str, Any] = {"strategy": strategy.name, "multipleScalersCalculation": calculation}
    if strategy.name == "custom":
        scaling |= {
            "customScalingQueueLengthDeduction": 2,
            "customScalingRunningJobPercentage": "0.25",
        }
    path = scaled_job(
        tmp_path, fake("jobs", "5"), fake("other", "2"),
        maxReplicaCount=8, scalingStrategy=scaling,
    )  # fmt: skip
    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "300", "--duration", "240",
                 "--job-duration", "50", "--job-pending", "35", "--json")  # fmt: skip
    assert await command.run(args, {}, out, clock=clock) == 0

    rows = json.loads(out.getvalue())
    assert [r["time"] for r in rows] == list(range(0, 241, 30))
    # KEDA's formulas, fed with the values the run read
    jobs, created = Jobs(50, 35), []
    for row in rows:
        values = row["metrics"]
        triggers = [(values["s0-fake-jobs"], 5.0, values["s0-fake-jobs"] > 0),
                    (values["s1-fake-other"], 2.0, values["s1-fake-other"] > 0)]  # fmt: skip
        counted = jobs.counts(row["time"])
        assert (row["running"], row["pending"]) == counted
        count = jobs_to_create(
            triggers, *counted, high=8, calculation=calculation, strategy=strategy
        )
        jobs.create(row["time"], count)
        created.append(count)
    assert [r["created"] for r in rows] == created
    assert sum(created) > 0
    # the values are the scripts', read at each poll
    assert [r["metrics"]["s0-fake-jobs"] for r in rows] == [0, 12, 40, 40, 9, 9, 0, 0, 0]


async def test_simulate_a_scaled_job_table_and_plot(serve, fake_backend, tmp_path, capsys):
    running = await serve(cache_ttl=0.0)
    clock = SteppedClock(300)
    fake_backend.values = PerResource(clock, SCRIPTS)
    path = scaled_job(tmp_path, fake("jobs", "5"), successfulJobsHistoryLimit=3)
    plot = tmp_path / "jobs.png"
    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "300", "--duration", "90",
                 "--plot", str(plot))  # fmt: skip
    assert await command.run(args, {}, out, clock=clock) == 0

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "ScaledJob/media/resize: jobs 0..100, pollingInterval 30s, scalingStrategy default, "
        "multipleScalersCalculation max, jobs run 60s; 90s simulated at 300x"
    )
    assert lines[1].split() == [
        "TIME", "s0-fake-jobs", "ACTIVE", "QUEUE", "MAXSCALE", "RUNNING", "PENDING", "CREATED",
        "REASON",
    ]  # fmt: skip
    assert lines[3].split(maxsplit=8) == [
        "30.0", "12", "yes", "12", "3", "0", "0", "3", "default: maxScale 3 - running 0 = 3; created 3",
    ]  # fmt: skip
    assert lines[4].split()[:8] == ["60.0", "40", "yes", "40", "8", "3", "0", "5"]
    assert "successfulJobsHistoryLimit ignored" in capsys.readouterr().err
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_simulate_options_belong_to_their_kind(serve, fake_backend, tmp_path, capsys):
    running = await serve(cache_ttl=0.0)
    so = write_manifest(tmp_path, "external")
    args = parse(str(so), "--address", running.address, "--drain", "--job-pending", "5")
    assert await command.run(args, {}, io.StringIO()) == 2
    assert "--job-pending, --drain: only for a ScaledJob" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(str(so), "--drain", "--job-duration", "5")  # one or the other

    nameless = fake("x", "5")
    del nameless["metadata"]["name"]  # the scaler refuses its GetMetricSpec
    job = scaled_job(tmp_path, nameless)
    args = parse(str(job), "--address", running.address, "--duration", "1")
    assert await command.run(args, {}, io.StringIO()) == 1
    assert "KEDA would leave this trigger out of every poll" in capsys.readouterr().err
