from tests.api.conftest import _clear_auth_failures, auth, raw_token  # noqa: F401  # the API's token fixtures
