from alta_common.service import serve

from alta_authz.settings import Settings

serve("alta_authz.app:create_app", Settings())
