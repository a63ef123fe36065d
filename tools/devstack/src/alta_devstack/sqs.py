"""An SQS-compatible server (moto in server mode) and queue setup with dead-letter queues."""

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiobotocore.session import get_session
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from alta_devstack.servers import shutdown_requested

REGION = "us-east-1"
# Each queue's visibility timeout matches its consumer's SQS_VISIBILITY_TIMEOUT_SECONDS default:
# crm_integration may hold a message through limiter waits and CRM retries.
VISIBILITY_TIMEOUTS = {"email": 30, "crm": 90}


@dataclass(frozen=True)
class QueueUrls:
    name: str
    url: str
    dlq_name: str
    dlq_url: str


class SqsServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 9324) -> None:
        self.endpoint_url = f"http://{host}:{port}"
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)

    def start(self) -> None:
        # moto's werkzeug server logs a line per SQS call; ours are in the services' logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()

    def stop(self) -> None:
        """Stop serving and free the port; queues and messages stay (moto keeps them in this
        process), so `start()` again is an outage of the endpoint, not a loss of data."""
        self._server.stop()
        # moto's stop() leaves the listening socket open: new connections would hang, not be
        # refused, and a restart on the same port would fail.
        if self._server._server is not None:
            self._server._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def create_queues(
    endpoint_url: str,
    names: list[str],
    *,
    max_receive_count: int = 10,
    visibility_timeout: int = 30,
) -> dict[str, QueueUrls]:
    """Create each queue with a `<name>-dlq` that takes messages received too often."""
    client = get_session().create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        # moto accepts any credentials; botocore only insists that some exist.
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    queues = {}
    async with client as sqs:
        for name in names:
            dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
            attributes = await sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["QueueArn"]
            )
            redrive_policy = {
                "deadLetterTargetArn": attributes["Attributes"]["QueueArn"],
                "maxReceiveCount": str(max_receive_count),
            }
            created = await sqs.create_queue(
                QueueName=name,
                Attributes={
                    "VisibilityTimeout": str(visibility_timeout),
                    "RedrivePolicy": json.dumps(redrive_policy),
                },
            )
            queues[name] = QueueUrls(name, created["QueueUrl"], f"{name}-dlq", dlq_url)
    return queues


def main() -> None:
    shutdown = shutdown_requested()
    port = int(os.environ.get("DEVSTACK_SQS_PORT", "9324"))
    with SqsServer(port=port) as server:
        queues = {
            name: asyncio.run(
                create_queues(server.endpoint_url, [name], visibility_timeout=seconds)
            )[name]
            for name, seconds in VISIBILITY_TIMEOUTS.items()
        }
        print(f"sqs ready: {server.endpoint_url}", flush=True)
        for queue in queues.values():
            print(f"  {queue.url} (dead letters: {queue.dlq_url})", flush=True)
        shutdown.wait()


if __name__ == "__main__":
    main()
