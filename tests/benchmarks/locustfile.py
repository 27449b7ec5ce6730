"""A mixed actuary workload for `make bench` (tests/benchmarks/test_volume.py runs it headless).

Each simulated actuary uses the API with the token in BENCH_TOKEN on the engagements in
BENCH_ENGAGEMENTS (comma-separated ids, theirs): lists, detail pages, an upload, a run
queued for the workers, the approvals waiting. BENCH_TRIANGLE is a triangle CSV to upload.
"""

import os
import random

from locust import HttpUser, between, task

TOKEN = os.environ.get("BENCH_TOKEN", "")
ENGAGEMENTS = [e for e in os.environ.get("BENCH_ENGAGEMENTS", "").split(",") if e]
TRIANGLE = os.environ.get("BENCH_TRIANGLE", "")


class Actuary(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Token {TOKEN}"
        self.triangle = None

    @task(4)
    def engagements(self):
        self.client.get("/api/v1/engagements/?page_size=25", name="engagements list")

    @task(3)
    def runs(self):
        self.client.get("/api/v1/workflow-runs/?page_size=25", name="runs list")

    @task(3)
    def audit(self):
        self.client.get("/api/v1/audit-logs/?page_size=50", name="audit list")

    @task(2)
    def engagement_detail(self):
        self.client.get(f"/api/v1/engagements/{random.choice(ENGAGEMENTS)}/", name="engagement")

    @task(1)
    def approvals(self):
        self.client.get("/api/v1/approvals/?status=pending", name="approvals list")

    @task(1)
    def upload_and_run(self):
        engagement = random.choice(ENGAGEMENTS)
        with open(TRIANGLE, "rb") as handle:
            response = self.client.post(
                "/api/v1/artefacts/",
                data={
                    "engagement": engagement,
                    "name": "Bench triangle",
                    "artefact_type": "triangle",
                },
                files={"file": ("triangle.csv", handle, "text/csv")},
                name="artefact upload",
            )
        if response.status_code != 201:
            return
        params = {"triangle_artefact": response.json()["id"], "cumulative": True, "measure": "paid"}
        created = self.client.post(
            "/api/v1/workflow-runs/",
            json={
                "engagement": engagement,
                "workflow_type": "data_validation",
                "name": "Bench validation",
                "input_params": params,
            },
            name="run create",
        )
        if created.status_code == 201:
            run = created.json()["id"]
            self.client.post(f"/api/v1/workflow-runs/{run}/queue/", name="run queue")
