import sys

from alta_common import dead_letters
from alta_common.service import serve
from alta_crm_integration import reconcile
from alta_crm_integration.settings import Settings

# `python -m alta_crm_integration` serves; `dlq ...` manages dead letters, `reconcile` re-enqueues
# the registrations the CRM never got.
command = sys.argv[1:2]
if command == ["dlq"]:
    settings = Settings()
    sys.exit(
        dead_letters.main(
            sys.argv[2:],
            settings=settings,
            queue_name=settings.crm_queue_name,
            dlq_name=settings.crm_dlq_name,
            prog="python -m alta_crm_integration",
        )
    )
if command == ["reconcile"]:
    sys.exit(reconcile.main(sys.argv[2:], Settings()))
serve("alta_crm_integration.app:create_app", Settings())
