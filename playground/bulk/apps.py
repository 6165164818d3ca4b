from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "playground.bulk"
    label = "bulk"
