"""Admin-only lookup of when each account last reached the CRM, for the BFF's admin console."""

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.access import user_ids_of
from alta_common.authorization import require_permission
from alta_common.requests import read_json_object
from alta_crm_integration.repository import DeliveryRepository


async def lookup_deliveries(request: Request) -> JSONResponse:
    await require_permission(request, "deliveries:read", "deliveries")
    user_ids = user_ids_of(await read_json_object(request))
    deliveries: DeliveryRepository = request.app.state.deliveries
    synced = await deliveries.last_synced_times(user_ids)
    return JSONResponse(
        {
            "deliveries": {
                str(user_id): {"crm_synced_at": synced_at.isoformat()}
                for user_id, synced_at in synced.items()
            }
        }
    )


routes = [Route("/deliveries/lookup", lookup_deliveries, methods=["POST"])]
