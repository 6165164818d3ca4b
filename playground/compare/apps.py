from django.apps import AppConfig


class CompareConfig(AppConfig):
    name = "playground.compare"
    label = "compare"
