"""`python -m services.signals`: run the signals service."""

from services.http_common import serve
from services.signals.app import create_app
from services.signals.settings import SignalsSettings
from shared.plumbing.logging import configure_logging
from shared.plumbing.settings import settings_or_exit


def main() -> None:
    settings = settings_or_exit(SignalsSettings, "signals")
    configure_logging("signals", settings.log_format, settings.log_level)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
