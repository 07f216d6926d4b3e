"""Settings refuse what is only safe on a laptop, and shape the Kafka connection."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.kafka import client_options, faststream_security
from shared.settings import CommonSettings, Environment


def test_development_defaults_run_on_loopback_without_credentials() -> None:
    settings = CommonSettings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.generate_missing_keys and settings.creates_topics
    assert client_options(settings) == {"bootstrap_servers": settings.kafka_bootstrap_servers}
    assert faststream_security(settings) is None


def test_production_refuses_a_loopback_cluster() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        CommonSettings(environment="production", kafka_bootstrap_servers="127.0.0.1:9092")


def test_production_refuses_unauthenticated_kafka() -> None:
    with pytest.raises(ValidationError, match="unauthenticated"):
        CommonSettings(environment="production", kafka_bootstrap_servers="kafka:9093")


def test_sasl_needs_a_username_and_password() -> None:
    with pytest.raises(ValidationError, match="SASL needs"):
        CommonSettings(kafka_security_protocol="SASL_PLAINTEXT")


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
