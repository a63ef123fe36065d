import sys

from alta_common import dead_letters
from alta_common.service import serve
from alta_email_sender.settings import Settings

# `python -m alta_email_sender` serves; `... dlq list|show|redrive` manages dead letters.
if sys.argv[1:2] == ["dlq"]:
    settings = Settings()
    sys.exit(
        dead_letters.main(
            sys.argv[2:],
            settings=settings,
            queue_name=settings.email_queue_name,
            dlq_name=settings.email_dlq_name,
            prog="python -m alta_email_sender",
        )
    )
serve("alta_email_sender.app:create_app", Settings())
