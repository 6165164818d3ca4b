from django.apps import AppConfig


class EndpointsConfig(AppConfig):
    name = "playground.endpoints"
    label = "endpoints"
