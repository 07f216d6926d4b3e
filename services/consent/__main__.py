"""`python -m services.consent`: run the consent service."""

from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from services.http_common import serve
from shared.logging import configure_logging


def main() -> None:
    settings = ConsentSettings()
    configure_logging("consent", settings.log_format, settings.log_level)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
