"""Triggers the Rust worker's `logical-turn` workflow through the official Python SDK with the seed's payload.

usage: e2e_logical_turn.py <tenant_id> <agent_id> <interlocutor_id> <channel> <message_id> <message_content>
Prints one line `RESULT <json>` with the run's outputs.
"""

import json
import sys
from typing import Optional

from pydantic import BaseModel

from hatchet_sdk import Hatchet


class LogicalTurnInput(BaseModel):
    tenant_id: str
    agent_id: str
    interlocutor_id: str
    channel: str
    message_id: str
    message_content: str
    session_key: Optional[str] = None


hatchet = Hatchet()
workflow = hatchet.workflow(name="logical-turn", input_validator=LogicalTurnInput)
tenant_id, agent_id, interlocutor_id, channel, message_id, message_content = sys.argv[1:7]
result = workflow.run(
    LogicalTurnInput(
        tenant_id=tenant_id,
        agent_id=agent_id,
        interlocutor_id=interlocutor_id,
        channel=channel,
        message_id=message_id,
        message_content=message_content,
    )
)
print("RESULT " + json.dumps(result))
