from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "playground.catalog"
    label = "catalog"

    def ready(self) -> None:
        from playground.catalog import checks  # noqa: F401  (registers the system checks)
