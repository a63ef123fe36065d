"""`python -m alta_web_bff`: serve the pages with uvicorn."""

import uvicorn

from alta_web_bff.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "alta_web_bff.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
    )


if __name__ == "__main__":
    main()
