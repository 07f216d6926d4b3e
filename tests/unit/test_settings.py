"""Settings refuse what is only safe on a laptop, and shape the Kafka connection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.consent.settings import ConsentSettings
from services.signals.settings import SignalsSettings
from shared.plumbing.kafka import client_options, faststream_security
from shared.plumbing.kafka_credentials import MissingCredential
from shared.plumbing.settings import CommonSettings, Environment, settings_or_exit


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


def test_production_refuses_kafka_without_tls() -> None:
    # SASL_PLAINTEXT authenticates, but every record and the SCRAM exchange cross the network in clear
    with pytest.raises(ValidationError, match=r"without TLS.*SC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"):
        CommonSettings(
            environment="production",
            kafka_bootstrap_servers="kafka:9093",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="consent",
            kafka_sasl_password="s3cret",
        )


def test_an_unset_environment_means_production_and_refuses_the_laptop_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in list(os.environ):
        if variable.startswith(("SC_", "KAFKA_")):
            monkeypatch.delenv(variable)
    # the defaults (a loopback broker, no TLS, generated keys) are refused, and the message says why
    with pytest.raises(ValidationError, match=r"production refuses a Kafka cluster on loopback.*unless"):
        CommonSettings()
    with pytest.raises(ValidationError, match="without TLS"):
        SignalsSettings(kafka_bootstrap_servers="kafka:9093", kafka_sasl_password="s3cret")
    settings = AuditSettings(
        kafka_bootstrap_servers="kafka:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_password="s3cret"
    )
    assert settings.environment is Environment.PRODUCTION
    assert not settings.generate_missing_keys
    monkeypatch.setenv("SC_ENVIRONMENT", "development")
    assert CommonSettings().environment is Environment.DEVELOPMENT


def test_production_sasl_needs_a_username_and_password() -> None:
    tls: dict[str, object] = {
        "environment": "production",
        "kafka_bootstrap_servers": "kafka:9093",
        "kafka_security_protocol": "SASL_SSL",
    }
    with pytest.raises(ValidationError, match="SASL needs"):
        CommonSettings.model_validate(tls)
    with pytest.raises(ValidationError, match="SASL needs"):
        CommonSettings.model_validate({**tls, "kafka_sasl_username": "consent"})


def test_production_with_scram_neither_generates_keys_nor_creates_topics() -> None:
    settings = CommonSettings(
        environment="production",
        kafka_bootstrap_servers="kafka:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="consent",
        kafka_sasl_password="s3cret",
    )
    assert not settings.generate_missing_keys and not settings.creates_topics
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "consent"
    assert options["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_trusted_proxies_are_addresses_or_networks_never_anyone() -> None:
    settings = CommonSettings(trusted_proxies="10.42.0.0/16, 192.0.2.7,2001:db8::/32")
    assert settings.trusted_proxy_networks == ["10.42.0.0/16", "192.0.2.7", "2001:db8::/32"]
    assert CommonSettings().trusted_proxy_networks == []  # by default no one's forwarding is believed
    for wrong in ("*", "ingress-nginx", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="SC_TRUSTED_PROXIES"):
            CommonSettings(trusted_proxies=wrong)


def test_topic_names_take_the_prefix() -> None:
    assert CommonSettings(topic_prefix="acc.").topic("signals.accepted.v1") == "acc.signals.accepted.v1"


def test_a_service_whose_settings_are_refused_says_why_in_plain_lines_and_never_echoes_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in list(os.environ):
        if variable.startswith(("SC_", "KAFKA_")):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9093")
    monkeypatch.setenv("SC_KAFKA_SASL_PASSWORD", "a-secret-never-shown")
    with pytest.raises(SystemExit) as stopped:
        settings_or_exit(SignalsSettings, "signals")
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert said.startswith("signals: refused to start") and "without TLS" in said
    assert "a-secret-never-shown" not in said and "Traceback" not in said
    monkeypatch.setenv("SC_ENVIRONMENT", "development")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    assert settings_or_exit(ConsentSettings, "consent").environment is Environment.DEVELOPMENT


def test_a_replica_is_named_by_its_instance_id_else_its_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTNAME", raising=False)
    monkeypatch.delenv("SC_INSTANCE_ID", raising=False)
    assert SignalsSettings().instance_id == "0"  # one process on a laptop
    monkeypatch.setenv("HOSTNAME", "signals-2")  # a StatefulSet's pod keeps its name on restart
    assert SignalsSettings().instance_id == "signals-2"
    monkeypatch.setenv("SC_INSTANCE_ID", "7")
    assert ConsentSettings().instance_id == "7"
    monkeypatch.setenv("SC_INSTANCE_ID", "two words")  # it names a transactional id
    with pytest.raises(ValidationError, match="SC_INSTANCE_ID"):
        CommonSettings()


def test_more_than_one_replica_needs_an_id_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTNAME", raising=False)
    monkeypatch.delenv("SC_INSTANCE_ID", raising=False)
    monkeypatch.setenv("SC_REPLICAS", "2")
    with pytest.raises(ValidationError, match="stable id per replica"):
        ConsentSettings()
    monkeypatch.setenv("HOSTNAME", "consent-1")
    assert ConsentSettings().replicas == 2  # consent's state is on the bus: nothing else to share


@pytest.mark.parametrize(
    ("kind", "setting"),
    [(SignalsSettings, "SC_SIGNALS_DATABASE_URL"), (AuditSettings, "SC_AUDIT_DATABASE_URL")],
)
def test_more_than_one_replica_refuses_a_store_only_one_process_can_use(
    monkeypatch: pytest.MonkeyPatch, kind: type[CommonSettings], setting: str
) -> None:
    monkeypatch.setenv("SC_INSTANCE_ID", "1")
    monkeypatch.setenv("SC_REPLICAS", "2")
    with pytest.raises(ValidationError, match=f"{setting} to postgresql"):
        kind()
    monkeypatch.setenv(setting, "postgresql+psycopg://audit@db/safety_chain")
    assert kind().replicas == 2
    monkeypatch.setenv("SC_REPLICAS", "1")
    monkeypatch.setenv(setting, "sqlite:///one.db")
    assert kind().replicas == 1
