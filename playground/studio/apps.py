from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "playground.studio"
    label = "studio"
