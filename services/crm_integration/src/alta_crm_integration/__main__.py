from alta_common.service import serve
from alta_crm_integration.settings import Settings

serve("alta_crm_integration.app:create_app", Settings())
