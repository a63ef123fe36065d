"""Placeholder secrets are refused where it matters, accepted where it is convenient."""

import pytest
from pydantic import SecretStr, ValidationError, field_validator

from alta_common.settings import ServiceSettings, require_real_secret


class TokenSettings(ServiceSettings):
    api_token: SecretStr = SecretStr("dev-token")

    _secrets = field_validator("api_token")(require_real_secret)


@pytest.mark.parametrize("token", ["", "changeme", "dev-token", "short-secret"])
def test_production_refuses_placeholder_and_short_secrets(token: str) -> None:
    with pytest.raises(ValidationError, match="api_token must be set to a real secret"):
        TokenSettings(app_env="production", api_token=SecretStr(token))


def test_production_accepts_a_real_secret_and_development_its_default() -> None:
    real = "k3Jx9vQ2mZ8wR4tL7yB1"

    assert TokenSettings(app_env="production", api_token=SecretStr(real)).api_token
    assert TokenSettings(app_env="development").api_token.get_secret_value() == "dev-token"
    assert "k3Jx" not in repr(TokenSettings(app_env="production", api_token=SecretStr(real)))
