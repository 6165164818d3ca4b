from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "playground.tokens"
    label = "tokens"
