"""Settings refuse what is only safe on a laptop, and shape the Kafka connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.kafka import client_options, faststream_security
from shared.kafka_credentials import MissingCredential
from shared.settings import CommonSettings, Environment


def test_development_defaults_authenticate_with_the_principals_own_password_file(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "consent.password").write_text("from-the-file\n")
    settings = CommonSettings(keys_dir=tmp_path, kafka_sasl_username="consent")
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.generate_missing_keys and not settings.creates_topics  # provisioning owns topics
    assert client_options(settings) == {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "consent",
        "sasl_plain_password": "from-the-file",
    }
    assert faststream_security(settings) is not None


def test_each_service_connects_as_itself_and_a_cli_command_as_whom_it_acts_for() -> None:
    assert SignalsSettings().kafka_sasl_username == "signals"
    assert ConsentSettings().kafka_sasl_username == "consent"
    assert AuditSettings().kafka_sasl_username == "audit"
    assert CommonSettings().acting_as("riec-amsterdam").kafka_sasl_username == "riec-amsterdam"
    # an explicitly configured principal is kept
    assert CommonSettings(kafka_sasl_username="x").acting_as("riec-amsterdam").kafka_sasl_username == "x"


def test_a_missing_development_password_is_named_not_guessed(tmp_path: Path) -> None:
    with pytest.raises(MissingCredential, match="gm0363"):
        client_options(CommonSettings(keys_dir=tmp_path, kafka_sasl_username="gm0363"))
    with pytest.raises(ValueError, match="no Kafka principal"):
        client_options(CommonSettings(keys_dir=tmp_path))


def test_only_an_explicitly_open_development_cluster_goes_without_credentials() -> None:
    settings = CommonSettings(kafka_security_protocol="PLAINTEXT")
    assert client_options(settings) == {"bootstrap_servers": settings.kafka_bootstrap_servers}
    assert faststream_security(settings) is None


def test_production_refuses_a_loopback_cluster() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        CommonSettings(environment="production", kafka_bootstrap_servers="127.0.0.1:9092")


def test_production_refuses_unauthenticated_kafka() -> None:
    with pytest.raises(ValidationError, match="unauthenticated"):
        CommonSettings(
            environment="production",
            kafka_bootstrap_servers="kafka:9093",
            kafka_security_protocol="PLAINTEXT",
        )


def test_production_sasl_needs_a_username_and_password() -> None:
    with pytest.raises(ValidationError, match="SASL needs"):
        CommonSettings(environment="production", kafka_bootstrap_servers="kafka:9093")
    with pytest.raises(ValidationError, match="SASL needs"):
        CommonSettings(
            environment="production", kafka_bootstrap_servers="kafka:9093", kafka_sasl_username="consent"
        )


def test_production_with_scram_neither_generates_keys_nor_creates_topics() -> None:
    settings = CommonSettings(
        environment="production",
        kafka_bootstrap_servers="kafka:9093",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="consent",
        kafka_sasl_password="s3cret",
    )
    assert not settings.generate_missing_keys and not settings.creates_topics
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "consent"
    assert options["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_topic_names_take_the_prefix() -> None:
    assert CommonSettings(topic_prefix="acc.").topic("signals.accepted.v1") == "acc.signals.accepted.v1"
