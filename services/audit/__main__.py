"""`python -m services.audit`: run the audit service."""

from services.audit.app import create_app
from services.audit.settings import AuditSettings
from services.http_common import serve
from shared.plumbing.logging import configure_logging
from shared.plumbing.settings import settings_or_exit


def main() -> None:
    settings = settings_or_exit(AuditSettings, "audit")
    configure_logging("audit", settings.log_format, settings.log_level)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
