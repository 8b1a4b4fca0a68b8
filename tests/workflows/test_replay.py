"""Recorded journey histories must replay on the current workflow code: a
non-deterministic change (one not guarded by `workflow.patched`) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from workflows.journey import GuestJourneyWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    stems = {path.stem.split(".")[0] for path in HISTORIES}
    assert stems >= {
        "whole_stay", "changes_and_answers", "continued_as_new", "checked_in_declining_offers", "whatsapp_failed_later"
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_recorded_history_replays(path: Path) -> None:
    # In the sandbox, unlike the worker (`worker.workflow_runner`): a call that is not
    # deterministic (the clock, random, I/O) on a recorded path fails here.
    replayer = Replayer(workflows=[GuestJourneyWorkflow], data_converter=pydantic_data_converter,
                        workflow_runner=SandboxedWorkflowRunner())
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
