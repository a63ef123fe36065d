from alta_common.service import serve
from alta_registration.settings import Settings

serve("alta_registration.app:create_app", Settings())
