"""``python -m plans``: serve plans' HTTP API with uvicorn, as the settings say."""

from __future__ import annotations

import uvicorn

from plans.entrypoints.http import SERVICE_NAME, create_app
from plans.settings import PlansSettings
from sendkit.logging import configure_logging


def main() -> None:
    settings = PlansSettings()
    configure_logging(
        SERVICE_NAME, log_format=settings.log_format, level=settings.log_level
    )
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
