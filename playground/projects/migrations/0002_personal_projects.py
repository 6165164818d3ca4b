"""Every existing user gets a personal project, owned by them."""

from django.conf import settings
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def personal_projects_create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Project = apps.get_model("projects", "Project")
    Membership = apps.get_model("projects", "Membership")
    for user in User.objects.filter(personal_project__isnull=True).iterator():
        project = Project.objects.create(name="Personal", personal_of=user)
        Membership.objects.create(project=project, user=user, role="owner")


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(personal_projects_create, migrations.RunPython.noop)]
