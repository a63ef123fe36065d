from alta_common.service import serve
from alta_web_bff.settings import Settings

serve("alta_web_bff.app:create_app", Settings())
