"""`python -m services.consent`: run the consent service."""

from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from services.http_common import serve
from shared.plumbing.logging import configure_logging
from shared.plumbing.settings import settings_or_exit


def main() -> None:
    settings = settings_or_exit(ConsentSettings, "consent")
    configure_logging("consent", settings.log_format, settings.log_level)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
