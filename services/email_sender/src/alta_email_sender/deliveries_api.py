"""Admin-only lookup of when confirmation emails went out, for the BFF's admin console."""

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alta_common.access import user_ids_of
from alta_common.authorization import require_permission
from alta_common.requests import read_json_object
from alta_email_sender.repository import DeliveryRepository


async def lookup_deliveries(request: Request) -> JSONResponse:
    await require_permission(request, "deliveries:read", "deliveries")
    user_ids = user_ids_of(await read_json_object(request))
    deliveries: DeliveryRepository = request.app.state.deliveries
    sent = await deliveries.confirmation_sent_times(user_ids)
    return JSONResponse(
        {
            "deliveries": {
                str(user_id): {"confirmation_sent_at": sent_at.isoformat()}
                for user_id, sent_at in sent.items()
            }
        }
    )


routes = [Route("/deliveries/lookup", lookup_deliveries, methods=["POST"])]
