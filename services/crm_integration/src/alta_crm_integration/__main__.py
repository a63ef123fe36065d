"""`python -m alta_crm_integration`: the service under uvicorn, one worker."""

import uvicorn

from alta_crm_integration.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "alta_crm_integration.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
    )


if __name__ == "__main__":
    main()
