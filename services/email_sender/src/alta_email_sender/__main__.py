"""`python -m alta_email_sender`: serve the consumer with uvicorn."""

import uvicorn

from alta_email_sender.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "alta_email_sender.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
    )


if __name__ == "__main__":
    main()
