from alta_authz.settings import Settings
from alta_common.service import serve

serve("alta_authz.app:create_app", Settings())
