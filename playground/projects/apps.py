from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "playground.projects"
    label = "projects"

    def ready(self) -> None:
        from playground.projects import receivers  # noqa: F401  (connects the new user's personal project)
