"""The CI templates keep the admin role's secret away from merge-request jobs (they run the author's CI file)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

CI = Path(__file__).resolve().parent.parent / "desired-state" / "ci"


def _load(name: str) -> dict[str, object]:
    data = YAML(typ="safe").load((CI / name).read_text())
    assert isinstance(data, dict)
    return data


def test_github_review_job_holds_only_the_read_only_secret() -> None:
    jobs = _load("github-actions.yml")["jobs"]
    assert isinstance(jobs, dict)
    review = str(jobs["review"])
    assert "secrets.REVIEW_PGPASS" in review and "secrets.PGPASS }}" not in review
    assert "RECONCILE_CONFIG" in review and "[connect]" in review
    for job in ("apply", "drift"):
        assert "secrets.PGPASS }}" in str(jobs[job])


def test_gitlab_review_job_uses_the_read_only_role() -> None:
    data = _load("gitlab-ci.yml")
    review = data["review"]
    assert isinstance(review, dict)
    script = "\n".join(review["script"])
    assert 'export PGPASSFILE="$REVIEW_PGPASSFILE"' in script
    assert "RECONCILE_CONFIG" in script and "[connect]" in script
    assert script.index("RECONCILE_CONFIG") < script.index("reconcile review")
