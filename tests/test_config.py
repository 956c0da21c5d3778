"""Settings: code defaults, then instance/config.py, then KXN_* environment variables, then test config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kxn_meetings import create_app
from kxn_meetings.config import SETTINGS, ConfigError, Setting

README = Path(__file__).resolve().parent.parent / "README.md"
SECRET = "a-real-secret-key-for-these-tests-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Settings a developer exported in their shell must not leak into these tests."""
    import os

    for key in list(os.environ):
        if key.startswith("KXN_"):
            monkeypatch.delenv(key)


@pytest.fixture
def instance(tmp_path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


def make_app(instance: Path, **test_config):
    config = {
        "INSTANCE_PATH": str(instance),
        "TESTING": True,
        "SECRET_KEY": SECRET,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'test.sqlite3'}",
    }
    config.update(test_config)
    return create_app(config)


def test_each_layer_overrides_the_one_before(instance, monkeypatch):
    (instance / "config.py").write_text(
        'NETWORK_NAME = "Network from the instance file"\n'
        "MAIL_PORT = 2600\n"
        'BASE_URL = "https://instance.example.org"\n'
        'MAIL_SERVER = "smtp.instance.example.org"\n'
    )
    monkeypatch.setenv("KXN_MAIL_PORT", "2525")
    monkeypatch.setenv("KXN_BASE_URL", "https://env.example.org/")
    config = make_app(instance, BASE_URL="https://test.example.org").config

    assert config["TIMEZONE"] == "Europe/London"  # code default
    assert config["NETWORK_NAME"] == "Network from the instance file"  # instance file over default
    assert config["MAIL_SERVER"] == "smtp.instance.example.org"
    assert config["MAIL_PORT"] == 2525  # environment over instance file
    assert config["BASE_URL"] == "https://test.example.org"  # test config over environment

    monkeypatch.delenv("KXN_MAIL_PORT")
    assert make_app(instance).config["MAIL_PORT"] == 2600
    assert make_app(instance).config["BASE_URL"] == "https://env.example.org"  # trailing slash dropped


def test_the_instance_folder_can_come_from_the_environment(instance, monkeypatch):
    (instance / "config.py").write_text('NETWORK_NAME = "Found through KXN_INSTANCE_PATH"\n')
    monkeypatch.setenv("KXN_INSTANCE_PATH", str(instance))
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET})
    assert app.instance_path == str(instance)
    assert app.config["NETWORK_NAME"] == "Found through KXN_INSTANCE_PATH"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'kxn.sqlite3'}"


@pytest.mark.parametrize(
    ("variable", "raw", "name", "value"),
    [
        ("KXN_MAIL_PORT", "2525", "MAIL_PORT", 2525),
        ("KXN_MAIL_USE_TLS", "yes", "MAIL_USE_TLS", True),
        ("KXN_MAIL_USE_TLS", "Off", "MAIL_USE_TLS", False),
        ("KXN_OUTBOX_DELIVER_AFTER_COMMIT", "TRUE", "OUTBOX_DELIVER_AFTER_COMMIT", True),
        ("KXN_MAIL_TIMEOUT", "2.5", "MAIL_TIMEOUT", 2.5),
        ("KXN_OUTBOX_MAX_ATTEMPTS", " 3 ", "OUTBOX_MAX_ATTEMPTS", 3),
        ("KXN_NETWORK_NAME", "Réseau d'échange", "NETWORK_NAME", "Réseau d'échange"),
    ],
)
def test_environment_values_are_parsed_to_their_type(instance, monkeypatch, variable, raw, name, value):
    monkeypatch.setenv(variable, raw)
    parsed = make_app(instance).config[name]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("KXN_MAIL_PORT", "twenty-five", "KXN_MAIL_PORT must be a number, not 'twenty-five'"),
        ("KXN_MAIL_PORT", "0", "MAIL_PORT must be a whole number of at least 1"),
        ("KXN_MAIL_USE_TLS", "maybe", "KXN_MAIL_USE_TLS must be true or false, not 'maybe'"),
        ("KXN_MAIL_TIMEOUT", "soon", "KXN_MAIL_TIMEOUT must be a number"),
        ("KXN_TIMEZONE", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not an IANA time zone"),
        ("KXN_TIMEZONE", "../../etc/passwd", "is not an IANA time zone"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_clear_message(instance, monkeypatch, variable, raw, message):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_app(instance)


def test_production_refuses_to_start_without_a_real_secret_key(instance, monkeypatch):
    production = {"TESTING": False, "SECRET_KEY": "change-me"}
    with pytest.raises(ConfigError, match="KXN_SECRET_KEY"):
        make_app(instance, **production)
    monkeypatch.setenv("KXN_SECRET_KEY", SECRET)
    assert make_app(instance, TESTING=False).config["SECRET_KEY"] == SECRET


def readme_default(setting: Setting) -> str:
    """How the README shows a default, as written in the environment."""
    value = setting.default
    if value is None:
        return "(none)"
    if value == "" and setting.kind is str:
        return "(empty)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def readme_table() -> str:
    rows = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        meaning = setting.help.replace("|", "\\|")
        rows.append(f"| `KXN_{setting.name}` | {readme_default(setting)} | {meaning} |")
    return "\n".join(rows)


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md needs a '## Settings' section"
    documented = dict(re.findall(r"^\|\s*`KXN_([A-Z0-9_]+)`\s*\|\s*(.*?)\s*\|", section.group(1), re.M))
    expected = {s.name: readme_default(s) for s in SETTINGS}
    hint = f"\nUpdate the table in README.md's Settings section:\n\n{readme_table()}\n"
    assert documented.keys() == expected.keys(), hint
    assert documented == expected, hint
