"""``python -m plans``: serve plans' HTTP API with uvicorn, as the settings say."""

from __future__ import annotations

from plans.entrypoints.http import SERVICE_NAME, create_app
from plans.settings import PlansSettings
from sendkit.logging import configure_logging
from sendkit.web import serve


def main() -> None:
    settings = PlansSettings()
    configure_logging(
        SERVICE_NAME, log_format=settings.log_format, level=settings.log_level
    )
    app = create_app(settings)
    serve(app, host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
