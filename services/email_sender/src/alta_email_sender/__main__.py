from alta_common.service import serve
from alta_email_sender.settings import Settings

serve("alta_email_sender.app:create_app", Settings())
